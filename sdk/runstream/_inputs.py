"""Checks and conversions done on the caller's thread, so mistakes raise where they are made.

Everything here is pure: values in, normalised values (or a clear exception) out.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MAX_TAG_BYTES = 256
HISTOGRAM_BIN_RULES = ("auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt")


def check_step(step: object) -> int:
    """Return `step` as an int >= 0, or raise with what was wrong."""
    if isinstance(step, bool):
        raise TypeError(f"step must be an integer >= 0, not a bool ({step!r})")
    if isinstance(step, float) or (isinstance(step, np.floating)):
        if not math.isfinite(step):
            raise ValueError(f"step must be a finite integer >= 0, got {step!r}")
        if not float(step).is_integer():
            raise ValueError(f"step must be a whole number, got {step!r}")
        step = int(step)
    else:
        try:
            step = operator.index(step)  # type: ignore[arg-type]
        except TypeError:
            if not hasattr(step, "item") or isinstance(step, (str, bytes)):
                raise TypeError(f"step must be an integer >= 0, not {type(step).__name__} ({step!r})") from None
            return check_step(_tensor_item(step))
    assert isinstance(step, int)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step >= 2**63:
        raise ValueError(f"step must be below 2**63, got {step}")
    return step


def check_tag(tag: object) -> str:
    if not isinstance(tag, str):
        raise TypeError(f"tag must be a str, not {type(tag).__name__} ({tag!r})")
    if not tag:
        raise ValueError("tag must be a non-empty string")
    if len(tag.encode("utf-8", "surrogatepass")) > MAX_TAG_BYTES:
        raise ValueError(f"tag {tag[:40]!r}... is longer than {MAX_TAG_BYTES} bytes of UTF-8")
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"tag {tag!r} is not valid UTF-8 (it holds a lone surrogate)") from None
    if "\x00" in tag:
        raise ValueError(f"tag {tag!r} contains a NUL character")
    return tag


def to_float(tag: str, value: object) -> float:
    """A scalar value as float: Python and NumPy numbers, 0-d or 1-element arrays and tensors."""
    if isinstance(value, (float, int)):
        return float(value)
    if isinstance(value, np.generic):
        if np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_:
            if np.iscomplexobj(value):
                raise TypeError(f"value of {tag!r} is complex ({value!r}); log its real part or abs()")
            return float(value)
    if hasattr(value, "item"):  # a 0-d or 1-element array or tensor
        return to_float(tag, _tensor_item(value))
    if isinstance(value, str):
        raise TypeError(f"value of {tag!r} must be a number, not a str ({value!r})")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"value of {tag!r} must be a number, not {type(value).__name__}") from None


def _tensor_item(value: object) -> Any:
    size = getattr(value, "size", None)
    count = value.numel() if hasattr(value, "numel") else size
    if count != 1:
        raise TypeError(f"expected a single number, got an array or tensor with {count} elements")
    return value.item()  # type: ignore[attr-defined]


def to_numpy(values: object, dtype: type | None = None) -> np.ndarray:
    """A private copy of array-like or tensor data, without importing torch."""
    if type(values) is np.ndarray and (dtype is None or values.dtype == dtype):
        return values.copy()
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor
        values = values.detach().cpu().numpy()
    return np.array(values, dtype=dtype, copy=True)


def check_bins(bins: object) -> int | str | np.ndarray:
    if isinstance(bins, bool):
        raise TypeError("bins must be an int, a rule name or a sequence of edges, not a bool")
    if isinstance(bins, (int, np.integer)):
        if not 1 <= int(bins) <= 10_000:
            raise ValueError(f"bins must be between 1 and 10000, got {bins}")
        return int(bins)
    if isinstance(bins, str):
        if bins not in HISTOGRAM_BIN_RULES:
            raise ValueError(f"bins rule {bins!r} is not one of {', '.join(HISTOGRAM_BIN_RULES)}")
        return bins
    edges = np.asarray(bins, dtype=np.float64)
    check_edges(edges, "bins")
    return edges


def check_edges(edges: np.ndarray, what: str) -> None:
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"{what} must be a 1-D sequence of at least 2 edges, got shape {edges.shape}")
    # Ascending fails on NaN, so only the two ends can be infinite.
    if not (edges[1:] > edges[:-1]).all():
        raise ValueError(f"{what} must be strictly ascending (and not NaN)")
    if not (-math.inf < edges[0] and edges[-1] < math.inf):
        raise ValueError(f"{what} must be finite")


def check_counts_edges(counts: object, edges: object) -> tuple[np.ndarray, np.ndarray]:
    """A pre-binned histogram: counts[i] values fell in [edges[i], edges[i+1])."""
    counts_array = to_numpy(counts, np.float64).reshape(-1)
    edges_array = to_numpy(edges, np.float64).reshape(-1)
    check_edges(edges_array, "edges")
    if counts_array.size != edges_array.size - 1:
        raise ValueError(
            f"a histogram needs one more edge than counts: got {counts_array.size} counts and {edges_array.size} edges"
        )
    if not (counts_array.min() >= 0 and counts_array.max() < math.inf):  # min is NaN if any count is
        raise ValueError("histogram counts must be finite and >= 0")
    return counts_array, edges_array


def check_image(image: object) -> np.ndarray:
    """An image as a private HWC array (C in 1, 3, 4) of uint8 or float in [0, 1].

    Accepts HW, HWC and CHW arrays or tensors, and PIL images.
    """
    if hasattr(image, "getbands") and hasattr(image, "size"):  # a PIL image
        array = np.array(image)
    else:
        array = to_numpy(image)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if not (array.dtype == np.uint8 or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"image dtype must be uint8 or float in [0, 1], not {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.ndim == 3:
        if array.shape[2] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
            array = np.ascontiguousarray(array.transpose(1, 2, 0))  # CHW -> HWC
    else:
        raise ValueError(f"image must be HW, HWC or CHW, got shape {array.shape}")
    height, width, channels = array.shape
    if channels not in (1, 3, 4):
        raise ValueError(f"image must have 1, 3 or 4 channels (HW, HWC or CHW), got shape {array.shape}")
    if not (1 <= height <= 8192 and 1 <= width <= 8192):
        raise ValueError(f"image sides must be between 1 and 8192 pixels, got {width}x{height}")
    return array


# An embedding's bounds; the server refuses beyond the same ones (runstream_service/validate.py).
EMBEDDING_MAX_ROWS = 10_000_000
EMBEDDING_MAX_DIMS = 16_384
EMBEDDING_MAX_VALUES = 1 << 31  # rows x dims: 8 GiB of float32
EMBEDDING_MAX_IMAGE_SIDE = 512  # pixels, per point's image
EMBEDDING_LABEL = "label"  # the name of a single unnamed metadata column
EMBEDDING_MAX_COLUMNS = 64  # metadata columns
EMBEDDING_MAX_TEXT = 1_000  # characters of one metadata value
_JSON_TYPES = frozenset({str, int, float, bool, type(None)})


def check_embedding_matrix(tag: str, matrix: object) -> np.ndarray:
    """The caller's N x D matrix as a NumPy array, not copied (a torch tensor: its CPU data), checked."""
    if hasattr(matrix, "detach") and hasattr(matrix, "cpu"):  # a torch tensor
        matrix = matrix.detach().cpu().numpy()
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise ValueError(f"embedding {tag!r} must be a 2-D matrix (points x dimensions), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
        raise TypeError(f"embedding {tag!r} needs real numbers, got dtype {array.dtype}")
    rows, dims = array.shape
    if not 1 <= rows <= EMBEDDING_MAX_ROWS:
        raise ValueError(f"embedding {tag!r} has {rows} points; it needs 1 to {EMBEDDING_MAX_ROWS}")
    if not 1 <= dims <= EMBEDDING_MAX_DIMS:
        raise ValueError(f"embedding {tag!r} has {dims} dimensions; it needs 1 to {EMBEDDING_MAX_DIMS}")
    if rows * dims > EMBEDDING_MAX_VALUES:
        raise ValueError(
            f"embedding {tag!r} is {rows} x {dims} = {rows * dims} values; the limit is {EMBEDDING_MAX_VALUES} "
            "(8 GiB of float32): log fewer points or reduce the dimensions first"
        )
    return array


def check_embedding_metadata(tag: str, metadata: object, rows: int) -> tuple[tuple[str, ...], list[list[Any]]]:
    """Metadata as (column names, one list of `rows` values per column), copied.

    One column: a sequence (list, array, tensor) of one value per point, named "label". Several: a mapping
    of column name to such a sequence. Values are kept as JSON numbers, strings, booleans or null; other
    values (and NaN, +-Inf, which JSON lacks) are stored as their str().
    """
    if isinstance(metadata, Mapping):
        named = list(metadata.items())
        if not named:
            raise ValueError(f"metadata of embedding {tag!r} is an empty mapping; pass None for no metadata")
    else:
        named = [(EMBEDDING_LABEL, metadata)]
    if len(named) > EMBEDDING_MAX_COLUMNS:
        raise ValueError(
            f"metadata of embedding {tag!r} has {len(named)} columns; the limit is {EMBEDDING_MAX_COLUMNS}"
        )
    columns: list[str] = []
    values: list[list[Any]] = []
    for name, column in named:
        if not isinstance(name, str) or not name:
            raise TypeError(f"metadata columns of embedding {tag!r} must be named by non-empty str, got {name!r}")
        if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
            raise TypeError(
                f"metadata column {name!r} of embedding {tag!r} must be a sequence of one value per point, "
                f"not {type(column).__name__}"
            )
        as_list = column.tolist() if hasattr(column, "tolist") else list(column)
        if len(as_list) != rows:
            raise ValueError(
                f"metadata column {name!r} of embedding {tag!r} has {len(as_list)} values for {rows} points"
            )
        if len(name.encode("utf-8", "surrogatepass")) > MAX_TAG_BYTES:
            raise ValueError(f"metadata column name {name[:40]!r}... is longer than {MAX_TAG_BYTES} bytes")
        columns.append(name)
        values.append(_json_ready(tag, name, as_list))
    return tuple(columns), values


def _json_value(value: Any) -> Any:
    if type(value) in _JSON_TYPES and (type(value) is not float or math.isfinite(value)):
        return value
    return str(value)


def _json_ready(tag: str, name: str, values: list[Any]) -> list[Any]:
    """`values` with every one a JSON string, finite number, bool or null (checked by type first: C speed)."""
    types = set(map(type, values))
    if not types <= _JSON_TYPES or float in types:
        values = [_json_value(v) for v in values]
        types = set(map(type, values))
    if str in types:
        longest = max(len(v) for v in values if type(v) is str)
        if longest > EMBEDDING_MAX_TEXT:
            raise ValueError(
                f"metadata column {name!r} of embedding {tag!r} holds a value of {longest} characters; "
                f"the limit is {EMBEDDING_MAX_TEXT}"
            )
    return values


def metadata_rows(header: Sequence[object] | None, rows: Sequence[Any]) -> dict[str, list[Any]]:
    """torch's and tensorboardX's metadata (`metadata_header` names the columns of each row) as columns."""
    if header is None:
        return {EMBEDDING_LABEL: list(rows)}
    names = [str(h) for h in header]
    table: dict[str, list[Any]] = {name: [] for name in names}
    if len(table) != len(names):
        raise ValueError(f"metadata_header has repeated names: {names}")
    for i, row in enumerate(rows):
        cells = row.tolist() if hasattr(row, "tolist") else list(row)
        if len(cells) != len(names):
            raise ValueError(f"metadata row {i} has {len(cells)} values; metadata_header names {len(names)} columns")
        for name, cell in zip(names, cells):
            table[name].append(cell)
    return table


def check_embedding_images(tag: str, images: object, rows: int) -> np.ndarray:
    """One image per point as an N x H x W x C array (C in 1, 3, 4; uint8, or float in [0, 1]), not copied.

    Accepts NCHW (torch's and tensorboardX's `label_img`), NHWC and NHW arrays or tensors.
    """
    if hasattr(images, "detach") and hasattr(images, "cpu"):
        images = images.detach().cpu().numpy()
    array = np.asarray(images)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if not (array.dtype == np.uint8 or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"images of embedding {tag!r} must be uint8 or float in [0, 1], not {array.dtype}")
    if array.ndim == 3:
        array = array[:, :, :, None]
    elif array.ndim == 4:
        if array.shape[1] in (1, 3, 4):  # NCHW (torch's order) wins when both could be channels
            array = array.transpose(0, 2, 3, 1)  # NCHW -> NHWC, a view
    else:
        raise ValueError(f"images of embedding {tag!r} must be NCHW, NHWC or NHW, got shape {array.shape}")
    count, height, width, channels = array.shape
    if count != rows:
        raise ValueError(f"embedding {tag!r} has {rows} points but {count} images; give one image per point")
    if channels not in (1, 3, 4):
        raise ValueError(f"images of embedding {tag!r} need 1, 3 or 4 channels, got shape {array.shape}")
    side = EMBEDDING_MAX_IMAGE_SIDE
    if not (1 <= height <= side and 1 <= width <= side):
        raise ValueError(f"images of embedding {tag!r} may be at most {side} x {side} pixels, got {width} x {height}")
    return array


# A clip, video, mesh or tensor travels in one batch, and a batch has at most 64 MiB: each is at most
# 48 MiB as sent (WAV: 2 bytes per sample; APNG: at most about its raw pixels; a mesh's arrays).
MAX_PAYLOAD_BYTES = 48 << 20
MAX_AUDIO_CHANNELS = 8
MAX_AUDIO_SAMPLES = MAX_PAYLOAD_BYTES // 2  # frames x channels: 9.5 minutes of 44.1 kHz stereo
MAX_VIDEO_FRAMES = 10_000
MAX_TENSOR_BYTES = MAX_PAYLOAD_BYTES
TENSOR_DTYPES = frozenset(
    ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64")
)


def _array(values: object) -> np.ndarray:
    """The caller's data as an array, without importing torch (a tensor: its CPU data), not copied."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _real(what: str, array: np.ndarray) -> None:
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
        raise TypeError(f"{what} needs real numbers, got dtype {array.dtype}")


MAX_SAMPLE_RATE = 768_000.0  # Hz (the server's limit)


def check_audio(tag: str, samples: object, sample_rate: object) -> tuple[np.ndarray, float]:
    """A clip as a private frames x channels float32 array (a 1-D clip is one channel) and its rate.

    Values are amplitudes in [-1, 1]; louder ones are clipped when encoded, as tensorboardX clips."""
    array = _array(samples)
    _real(f"audio {tag!r}", array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"audio {tag!r} must be frames (1-D) or frames x channels (2-D), got shape {array.shape}")
    frames, channels = array.shape
    if not 1 <= channels <= MAX_AUDIO_CHANNELS:
        raise ValueError(
            f"audio {tag!r} has {channels} channels (shape {array.shape}); it needs 1 to {MAX_AUDIO_CHANNELS}: "
            "pass frames x channels"
        )
    if frames < 1 or frames * channels > MAX_AUDIO_SAMPLES:
        raise ValueError(
            f"audio {tag!r} has {frames} frames x {channels} channels; it needs 1 to {MAX_AUDIO_SAMPLES} samples "
            "(frames x channels): log a shorter clip"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"sample_rate of audio {tag!r} must be a number of Hz, not {type(sample_rate).__name__}")
    rate = float(sample_rate)
    if not 1.0 <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample_rate of audio {tag!r} must be 1 to {MAX_SAMPLE_RATE:,.0f} Hz, got {sample_rate}")
    return np.array(array, dtype=np.float32), rate


def check_video(tag: str, frames: object, fps: object) -> tuple[np.ndarray, float]:
    """A video as a private T x H x W x C uint8 array (floats in [0, 1] scaled by 255 and clipped)
    and its frames per second. Accepts THWC (C in 1, 3, 4) and THW."""
    array = _array(frames)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if not (array.dtype == np.uint8 or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"video {tag!r} must be uint8, or float in [0, 1], not {array.dtype}")
    if array.ndim == 3:
        array = array[:, :, :, None]
    if array.ndim != 4 or array.shape[3] not in (1, 3, 4):
        raise ValueError(f"video {tag!r} must be frames x height x width x channels (1, 3 or 4), got {array.shape}")
    count, height, width, _ = array.shape
    if not 1 <= count <= MAX_VIDEO_FRAMES:
        raise ValueError(f"video {tag!r} has {count} frames; it needs 1 to {MAX_VIDEO_FRAMES}")
    if not (1 <= height <= 8192 and 1 <= width <= 8192):
        raise ValueError(f"video {tag!r}'s sides must be 1 to 8192 pixels, got {width}x{height}")
    if array.size > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"video {tag!r} is {array.size} bytes of pixels; the limit is {MAX_PAYLOAD_BYTES}: log fewer or "
            "smaller frames"
        )
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise TypeError(f"fps of video {tag!r} must be a number, not {type(fps).__name__}")
    rate = float(fps)
    if not 0.0 < rate <= 1000.0:
        raise ValueError(f"fps of video {tag!r} must be above 0 and at most 1000, got {fps}")
    if array.dtype != np.uint8:
        array = (np.clip(np.nan_to_num(array.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        array = array.copy()
    return array, rate


def check_mesh(
    tag: str, vertices: object, colors: object, faces: object
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A batch of meshes as private arrays: vertices B x N x 3 float32, colors B x N x 3 uint8 (or None),
    faces B x F x 3 uint32 (or None: a point cloud). Unbatched (N x 3) input is a batch of one."""
    v = _array(vertices)
    _real(f"vertices of mesh {tag!r}", v)
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[2] != 3 or v.shape[1] < 1 or v.shape[0] < 1:
        raise ValueError(f"vertices of mesh {tag!r} must be B x N x 3 (or N x 3), N >= 1; got shape {v.shape}")
    batch, count = v.shape[0], v.shape[1]
    c = None
    if colors is not None:
        c = _array(colors)
        _real(f"colors of mesh {tag!r}", c)
        if c.ndim == 2:
            c = c[None]
        if c.shape != (batch, count, 3):
            raise ValueError(
                f"colors of mesh {tag!r} must be one RGB colour per vertex, shape {(batch, count, 3)}; got {c.shape}"
            )
        if not (c.min() >= 0 and c.max() <= 255):
            raise ValueError(f"colors of mesh {tag!r} must be 0 to 255")
        c = np.round(c).astype(np.uint8) if c.dtype != np.uint8 else c.copy()
    f = None
    if faces is not None:
        f = _array(faces)
        if not np.issubdtype(f.dtype, np.integer) and not (
            np.issubdtype(f.dtype, np.floating) and np.all(np.mod(f, 1) == 0)
        ):
            raise TypeError(f"faces of mesh {tag!r} must be whole vertex indices, got dtype {f.dtype}")
        if f.ndim == 2:
            f = f[None]
        if f.ndim != 3 or f.shape[0] != batch or f.shape[2] != 3:
            raise ValueError(f"faces of mesh {tag!r} must be B x F x 3 vertex indices (B = {batch}), got {f.shape}")
        if f.size and not (f.min() >= 0 and f.max() < count):
            raise ValueError(f"faces of mesh {tag!r} must index vertices 0 to {count - 1}")
        f = f.astype(np.uint32)
    size = count * (12 + (3 if c is not None else 0)) + (f.shape[1] * 12 if f is not None else 0)
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"each mesh of {tag!r} is {size} bytes as sent; the limit is {MAX_PAYLOAD_BYTES}")
    return np.array(v, dtype=np.float32), c, f


def check_tensor(tag: str, tensor: object) -> np.ndarray:
    """A private copy of a tensor of one of TENSOR_DTYPES, at most MAX_TENSOR_BYTES."""
    array = _array(tensor)
    if array.dtype.name not in TENSOR_DTYPES:
        raise TypeError(f"tensor {tag!r} has dtype {array.dtype}; log one of {', '.join(sorted(TENSOR_DTYPES))}")
    if array.nbytes > MAX_TENSOR_BYTES:
        raise ValueError(f"tensor {tag!r} is {array.nbytes} bytes; the limit is {MAX_TENSOR_BYTES}")
    return np.array(array, order="C")


MAX_BOXES = 10_000  # per image (the server's limit)
MAX_BOX_LABEL_CHARS = 1_000


def check_boxes(tag: str, boxes: object, labels: object, height: int, width: int) -> str:
    """Boxes (N x 4: x_min, y_min, x_max, y_max in pixels) and optional labels (one str per box) as the
    wire's JSON; "" when there are none."""
    array = _array(boxes)
    _real(f"boxes of image {tag!r}", array)
    if array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim == 1 and array.size == 4:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes of image {tag!r} must be N x 4 (x_min, y_min, x_max, y_max); got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"boxes of image {tag!r} must be finite numbers")
    if len(array) > MAX_BOXES:
        raise ValueError(f"image {tag!r} has {len(array)} boxes; at most {MAX_BOXES} per image")
    if (array[:, 0] > array[:, 2]).any() or (array[:, 1] > array[:, 3]).any():
        raise ValueError(f"boxes of image {tag!r} need x_min <= x_max and y_min <= y_max")
    doc: dict[str, Any] = {"boxes": [[float(x) for x in row] for row in array]}
    if labels is not None:
        names = [labels] if isinstance(labels, str) else list(labels)  # type: ignore[call-overload]
        if len(names) != len(array):
            raise ValueError(f"image {tag!r} has {len(array)} boxes but {len(names)} labels; give one per box")
        doc["labels"] = [str(name) for name in names]
        if any(len(name) > MAX_BOX_LABEL_CHARS for name in doc["labels"]):
            raise ValueError(f"a box label of image {tag!r} has more than {MAX_BOX_LABEL_CHARS} characters")
    return json.dumps(doc, separators=(",", ":"))


def check_layout(layout: object) -> str:
    """A custom-scalar layout, the wire's JSON object {"categories": [{"title", "closed", "charts": [
    {"title", "multiline": {"tags": [regex, ...]}} | {"title", "margin": {"series": [{"value", "lower",
    "upper"}, ...]}}]}]}, checked and as JSON text."""
    if not isinstance(layout, Mapping) or not isinstance(layout.get("categories"), list):
        raise TypeError('a custom-scalar layout is a dict {"categories": [...]}')
    for i, category in enumerate(layout["categories"]):
        if not isinstance(category, Mapping) or not isinstance(category.get("title"), str):
            raise ValueError(f"layout category {i} needs a str title")
        for j, chart in enumerate(category.get("charts", [])):
            where = f"chart {j} of layout category {category['title']!r}"
            if not isinstance(chart, Mapping) or not isinstance(chart.get("title"), str):
                raise ValueError(f"{where} needs a str title")
            if "multiline" in chart:
                tags = chart["multiline"].get("tags")
                if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                    raise ValueError(f"{where}: multiline needs tags, a list of str")
            elif "margin" in chart:
                series = chart["margin"].get("series")
                keys = ("value", "lower", "upper")
                if not isinstance(series, list) or not all(
                    isinstance(s, Mapping) and all(isinstance(s.get(k), str) for k in keys) for s in series
                ):
                    raise ValueError(f"{where}: margin needs series, a list of {{'value', 'lower', 'upper'}} tags")
            else:
                raise ValueError(f"{where} needs 'multiline' or 'margin'")
    return json.dumps(layout, separators=(",", ":"))
