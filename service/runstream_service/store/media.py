"""What the server needs to know of an audio clip or a video before storing it. Pure: bytes in, facts out.

A WAV file's header is read here, by hand, rather than with the `wave` module: `wave` knows only
integer PCM, and tensorboardX's and soundfile's clips are often float32. A video is sniffed by its
first bytes (APNG is a PNG with an animation control chunk; GIF) and then decoded frame by frame
with Pillow, so a truncated or corrupt file is refused before it is stored, not found broken in
the browser.

Errors are MediaError with a message that says what is wrong and what would be accepted;
validate.py prefixes the field.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIF_MAGICS = (b"GIF87a", b"GIF89a")

# WAVE format tags (RIFF's fmt chunk); EXTENSIBLE names the real one in its sub-format GUID.
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
PCM_BITS: tuple[int, ...] = (8, 16, 32)
FLOAT_BITS: tuple[int, ...] = (32,)
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 768_000


class MediaError(ValueError):
    """The bytes are not a clip or a video this server stores; the message says why."""


@dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    frames: int  # samples per channel
    bits: int
    is_float: bool


def parse_wav(blob: bytes) -> WavInfo:
    """The header of a RIFF/WAVE file of integer PCM (8, 16 or 32 bits) or float32 samples."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise MediaError("is not a WAV file (it must start with RIFF....WAVE)")
    fmt: bytes | None = None
    data_size: int | None = None
    pos = 12
    while pos + 8 <= len(blob):
        chunk_id = blob[pos : pos + 4]
        (size,) = struct.unpack_from("<I", blob, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            fmt = blob[body : body + size]
        elif chunk_id == b"data":
            if body + size > len(blob):
                left = len(blob) - body
                raise MediaError(f"its data chunk says {size} bytes, but the file ends {left} bytes after it")
            data_size = size
            break
        pos = body + size + (size & 1)  # chunks are padded to an even length
    if fmt is None or len(fmt) < 16:
        raise MediaError("has no complete fmt chunk before its data")
    if data_size is None:
        raise MediaError("has no data chunk")
    tag, channels, sample_rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            raise MediaError("is WAVE_FORMAT_EXTENSIBLE without its sub-format")
        (tag,) = struct.unpack_from("<H", fmt, 24)  # the GUID's first two bytes are the format tag
    if tag == WAVE_FORMAT_PCM:
        is_float, allowed = False, PCM_BITS
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        is_float, allowed = True, FLOAT_BITS
    else:
        raise MediaError(f"has WAVE format {tag:#06x}; store integer PCM (8, 16 or 32 bits) or float32 samples")
    if bits not in allowed:
        kind = "float" if is_float else "integer PCM"
        raise MediaError(f"has {bits}-bit {kind} samples; use {' or '.join(map(str, allowed))} bits")
    if not 1 <= channels <= MAX_CHANNELS:
        raise MediaError(f"has {channels} channels; 1 to {MAX_CHANNELS} are stored")
    if not 1 <= sample_rate <= MAX_SAMPLE_RATE:
        raise MediaError(f"has a sample rate of {sample_rate} Hz; 1 to {MAX_SAMPLE_RATE} are stored")
    if block_align != channels * bits // 8:
        need = channels * bits // 8
        raise MediaError(f"says {block_align} bytes per frame; {channels} channels of {bits} bits need {need}")
    if data_size % block_align:
        raise MediaError(f"has {data_size} bytes of samples, not a whole number of {block_align}-byte frames")
    return WavInfo(sample_rate, channels, data_size // block_align, bits, is_float)


@dataclass(frozen=True)
class VideoInfo:
    mime: str  # image/apng or image/gif
    width: int
    height: int
    frames: int


def parse_video(blob: bytes, max_frame_pixels: int, max_pixels: int) -> VideoInfo:
    """Width, height and frame count of an APNG (or a plain PNG: one frame) or a GIF, every frame decoded.

    max_frame_pixels bounds width x height, max_pixels bounds width x height x frames (the work of
    decoding it, here and in the browser).
    """
    if blob.startswith(PNG_MAGIC):
        mime, fmt = "image/apng", "PNG"
    elif blob[:6] in GIF_MAGICS:
        mime, fmt = "image/gif", "GIF"
    else:
        raise MediaError("is neither an APNG nor a GIF (checked by its first bytes)")
    try:
        with Image.open(io.BytesIO(blob), formats=[fmt]) as image:
            width, height = image.size
            if width * height > max_frame_pixels:
                raise MediaError(f"{width}x{height} pixels per frame is more than the limit of {max_frame_pixels}")
            frames = int(getattr(image, "n_frames", 1))
            if width * height * frames > max_pixels:
                raise MediaError(
                    f"{frames} frames of {width}x{height} pixels is more than the limit of {max_pixels} pixels"
                )
            for frame in range(frames):
                image.seek(frame)
                image.load()
    except MediaError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise MediaError(f"does not decode as {fmt}: {exc}") from None
    return VideoInfo(mime, width, height, frames)
