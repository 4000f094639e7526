"""Decoding TensorBoard's plugin summaries into runstream's kinds: plain functions, no I/O.

Each function takes what an event file holds (a Summary.Value's parts, its plugin's metadata) and
returns the values runstream stores, or None when the value is not of a form runstream can store
(the importer counts it as skipped). The forms are those tensorboardX 2.6 and torch write:

- pr_curves: a float [6, T] tensor (true/false positives, true/false negatives, precision, recall).
- audio: Summary.Value.audio (a WAV file), or the TF2 audio plugin's string tensor of (WAV, label).
- mesh: one tensor per part ([B, N, 3] vertices, faces or colours) under the tag NAME_PART, with
  MeshPluginData naming the mesh and the part; the parts of one event make B meshes.
- custom_scalars: a string tensor holding a serialized Layout (tag custom_scalars__config__).
- video: tensorboardX's add_video writes an animated GIF as an image summary; a GIF of more than one
  frame is a video, its frame rate from the first frame's delay.
- tensor (torch's add_tensor, plugin "tensor"; or a plugin-less tensor of more than one value): the
  values as raw little-endian bytes of their NumPy dtype.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from runstream.tbcompat import event_pb2 as tb

CUSTOM_SCALARS_TAG = "custom_scalars__config__"
# TensorFlow's DataType codes -> NumPy dtypes (bfloat16, 14, is widened to float32: NumPy has none).
TF_DTYPES: dict[int, Any] = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    17: np.uint16,
    19: np.float16,
    22: np.uint32,
    23: np.uint64,
}
_BFLOAT16 = 14
MESH_PARTS = {1: "vertices", 2: "faces", 3: "colors"}


@dataclass(frozen=True)
class MeshPart:
    """One tensor of a mesh: `part` is "vertices", "faces" or "colors"; `values` is [B, N, 3]."""

    name: str
    part: str
    config: str
    values: np.ndarray


@dataclass(frozen=True)
class Mesh:
    """One mesh of a logged batch, as the wire's Meshes holds it."""

    sample: int
    vertices: np.ndarray  # float32 [N, 3]
    faces: np.ndarray | None  # uint32 [F, 3]
    colors: np.ndarray | None  # uint8 [N, 3]
    config: str


@dataclass(frozen=True)
class RawTensor:
    dtype: str
    shape: tuple[int, ...]
    data: bytes


def tensor_values(tensor: Any) -> np.ndarray | None:
    """A TensorProto's values, flat, in their own dtype (None when its dtype is not numeric)."""
    dtype = TF_DTYPES.get(tensor.dtype)
    if tensor.tensor_content:
        if tensor.dtype == _BFLOAT16:
            return _bfloat16(np.frombuffer(tensor.tensor_content, "<u2"))
        return None if dtype is None else np.frombuffer(tensor.tensor_content, dtype=np.dtype(dtype).newbyteorder("<"))
    for field, default in (
        ("float_val", np.float32),
        ("double_val", np.float64),
        ("int_val", np.int32),
        ("int64_val", np.int64),
        ("bool_val", np.bool_),
        ("uint32_val", np.uint32),
        ("uint64_val", np.uint64),
    ):
        values = getattr(tensor, field)
        if values:
            return np.array(values, dtype if dtype is not None and field in ("int_val", "uint32_val") else default)
    if tensor.half_val:
        return _half(np.array(tensor.half_val, np.int64), tensor.dtype == _BFLOAT16)
    return None


def _half(bits: np.ndarray, bfloat16: bool) -> np.ndarray:
    """half_val holds 16-bit patterns, except from torch's add_tensor, which writes each value's float32
    pattern there (TensorBoard cannot read those; a value beyond 16 bits tells them apart)."""
    if bits.size and (bits.max() > 0xFFFF or bits.min() < 0):
        wide = bits.astype(np.uint32).view(np.float32)
        return wide if bfloat16 else wide.astype(np.float16)
    narrow = bits.astype(np.uint16)
    return _bfloat16(narrow) if bfloat16 else narrow.view(np.float16)


def _bfloat16(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def tensor_shape(tensor: Any) -> tuple[int, ...]:
    return tuple(int(d.size) for d in tensor.tensor_shape.dim)


def raw_tensor(tensor: Any) -> RawTensor | None:
    """torch's add_tensor: the values with their dtype and shape; None for strings and complex numbers."""
    values = tensor_values(tensor)
    if values is None:
        return None
    shape = tensor_shape(tensor)
    size = int(np.prod(shape, dtype=np.int64))
    if size != values.size:
        if values.size != 1 or tensor.tensor_content:
            return None
        values = np.repeat(values, size)  # TensorFlow writes a tensor of one repeated value as that value once
    values = values.astype(values.dtype.newbyteorder("<"), copy=False)
    return RawTensor(values.dtype.name, shape, values.tobytes())


def pr_curve(tensor: Any) -> tuple[int, np.ndarray] | None:
    """(T, the 6 x T values as float64, row after row) of a pr_curves tensor."""
    values = tensor_values(tensor)
    if values is None or values.dtype == np.bool_ or values.size < 12 or values.size % 6:
        return None
    return values.size // 6, values.astype("<f8")


def audio_clips(value: Any, plugin: str) -> list[bytes]:
    """The WAV files of an audio summary (several for a TF2 audio tensor of k clips)."""
    if value.WhichOneof("value") == "audio":
        clip = value.audio
        wav = clip.encoded_audio_string
        return [wav] if _is_wav(wav) else []
    if plugin == "audio" and value.WhichOneof("value") == "tensor":
        strings = list(value.tensor.string_val)
        if len(value.tensor.tensor_shape.dim) == 2:  # [k, 2]: (encoded audio, label) pairs
            strings = strings[0::2]
        return [s for s in strings if _is_wav(s)]
    return []


def _is_wav(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def gif_video(encoded: bytes) -> float | None:
    """The frame rate of an animated GIF (tensorboardX's add_video), None for any other image."""
    if encoded[:4] != b"GIF8":
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(encoded)) as gif:
            if getattr(gif, "n_frames", 1) < 2:
                return None
            delay = float(gif.info.get("duration") or 0)
    except (OSError, ValueError):
        return None
    return 1000.0 / delay if delay > 0 else 10.0  # browsers play a GIF without delays at about 10 frames a second


def mesh_part(value: Any, content: bytes) -> MeshPart | None:
    data = tb.MeshPluginData.FromString(content)
    part = MESH_PARTS.get(data.content_type)
    values = tensor_values(value.tensor) if value.WhichOneof("value") == "tensor" else None
    shape = tensor_shape(value.tensor)
    if part is None or values is None or len(shape) != 3 or shape[2] != 3 or values.size != int(np.prod(shape)):
        return None
    name = data.name or value.tag.rsplit("_", 1)[0]
    return MeshPart(name, part, _config(data.json_config), values.reshape(shape))


def _config(text: str) -> str:
    try:
        config = json.loads(text) if text else None
    except ValueError:
        return ""
    return json.dumps(config, sort_keys=True, separators=(",", ":")) if isinstance(config, dict) else ""


def assemble_meshes(parts: list[MeshPart]) -> tuple[list[Mesh], int]:
    """The meshes one event's parts of one name make (B per batch of vertices), and the parts left
    unused (faces or colours without vertices, or of another batch size)."""
    by_part = {p.part: p for p in parts}
    vertices = by_part.get("vertices")
    if vertices is None:
        return [], len(parts)
    count, n = vertices.values.shape[:2]
    faces, colors = by_part.get("faces"), by_part.get("colors")
    unused = len(parts) - len(by_part)
    if faces is not None and (faces.values.shape[0] != count or not _valid_faces(faces.values, n)):
        faces, unused = None, unused + 1
    if colors is not None and colors.values.shape[:2] != (count, n):
        colors, unused = None, unused + 1
    config = next((p.config for p in parts if p.config), "")
    meshes = [
        Mesh(
            sample=b,
            vertices=vertices.values[b].astype("<f4"),
            faces=None if faces is None else faces.values[b].astype("<u4"),
            colors=None if colors is None else np.clip(np.rint(colors.values[b]), 0, 255).astype(np.uint8),
            config=config,
        )
        for b in range(count)
    ]
    return meshes, unused


def _valid_faces(faces: np.ndarray, vertex_count: int) -> bool:
    if faces.size == 0:
        return True
    return bool(faces.min() >= 0 and faces.max() < vertex_count and (faces == np.rint(faces)).all())


def layout_json(tensor: Any) -> str | None:
    """A custom_scalars Layout as the JSON of Batch.custom_scalars_layout."""
    if not tensor.string_val:
        return None
    try:
        layout = tb.Layout.FromString(tensor.string_val[0])
    except DecodeError:  # a layout runstream cannot read is skipped
        return None
    categories = []
    for category in layout.category:
        charts: list[dict[str, Any]] = []
        for chart in category.chart:
            kind = chart.WhichOneof("content")
            if kind == "multiline":
                charts.append({"title": chart.title, "multiline": {"tags": list(chart.multiline.tag)}})
            elif kind == "margin":
                series = [{"value": s.value, "lower": s.lower, "upper": s.upper} for s in chart.margin.series]
                charts.append({"title": chart.title, "margin": {"series": series}})
        categories.append({"title": category.title, "closed": category.closed, "charts": charts})
    return json.dumps({"categories": categories}, separators=(",", ":"))
