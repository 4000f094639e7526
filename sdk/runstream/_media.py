"""Audio clips to WAV and frame sequences to animated PNG. Pure: arrays in, file bytes out.

Both run on the sender thread (as PNG encoding of images does), never on the training thread.

Why APNG for videos: it is lossless, keeps full colour (GIF has 256 colours), is written by Pillow
(already a dependency; tensorboardX needs moviepy and imageio for its GIF), and every current browser
plays it in a plain <img> with no codec or script. The frame delay carries the fps.

Why 16-bit PCM WAV for audio: what tensorboardX writes through soundfile for float input, and what
every browser's <audio> plays; the stdlib `wave` module writes it, so no extra dependency.
"""

from __future__ import annotations

import io
import wave

import numpy as np
from PIL import Image

__all__ = ["encode_apng", "encode_wav"]


def encode_wav(samples: np.ndarray, sample_rate: float) -> bytes:
    """A WAV file (RIFF, 16-bit PCM) of `samples`: frames x channels floats in [-1, 1] (clipped).

    WAV stores the rate as a whole number of Hz; a fractional rate is rounded."""
    if samples.ndim != 2:
        raise ValueError(f"samples must be frames x channels, got shape {samples.shape}")
    pcm = np.round(np.clip(np.nan_to_num(samples.astype(np.float64)), -1.0, 1.0) * 32767.0).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(int(samples.shape[1]))
        wav.setsampwidth(2)
        wav.setframerate(max(1, round(sample_rate)))
        wav.writeframes(np.ascontiguousarray(pcm).tobytes())
    return out.getvalue()


def encode_apng(frames: np.ndarray, fps: float) -> bytes:
    """An animated PNG of `frames` (T x H x W x C uint8, C in 1, 3, 4), each shown 1/fps s, looping.

    A single frame is a plain PNG (still an APNG reader's first frame)."""
    if frames.ndim != 4 or frames.shape[3] not in (1, 3, 4) or frames.dtype != np.uint8:
        raise ValueError(f"frames must be T x H x W x C uint8 with C in 1, 3, 4; got {frames.shape} {frames.dtype}")
    pictures = [Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame) for frame in frames]
    out = io.BytesIO()
    if len(pictures) == 1:
        pictures[0].save(out, format="PNG")
    else:
        pictures[0].save(out, format="PNG", save_all=True, append_images=pictures[1:], duration=1000.0 / fps, loop=0)
    return out.getvalue()
