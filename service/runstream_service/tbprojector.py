"""TensorBoard projector folders read for `import-tensorboard`: embeddings as wire chunks. No network here.

torch's and tensorboardX's `add_embedding` write, beside the event files of a run's directory,
`projector_config.pbtxt` (one `embeddings { ... }` block per call) naming, relative to it:
`tensor_path` (tensors.tsv: one point per line, values separated by tabs), `metadata_path`
(metadata.tsv: one line per point; with several columns the first line is the header, as TensorBoard
reads it) and `sprite.image_path` (one image holding every point's image, `single_image_dim` wide and
high each, row after row), which is cut back into per-point PNGs. The `tensor_name` is `TAG:STEP`
(the step zero-padded to five digits). Embeddings without a `tensor_path` (TensorFlow checkpoints)
are skipped with a note.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runstream.v1 import ingest_pb2 as pb

CONFIG_NAME = "projector_config.pbtxt"
CHUNK_BYTES = 8 << 20  # vectors and PNGs of one chunk, as the SDK cuts them
_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|([{}:])|"((?:[^"\\]|\\.)*)"|([^\s{}:"#]+))')


@dataclass(frozen=True)
class ProjectorEmbedding:
    tag: str
    step: int
    wall_time: float
    vectors: np.ndarray  # N x D float32
    metadata: list[str]  # a JSON object per point, or empty
    images: list[bytes]  # a PNG per point, or empty

    @property
    def rows(self) -> int:
        return int(self.vectors.shape[0])


def parse_pbtxt(text: str) -> dict[str, list[Any]]:
    """Protobuf text format, as far as projector configs use it: each field name to its values (strings,
    numbers as text, or nested messages as dicts)."""
    tokens = [m for m in _TOKEN.finditer(text) if m.group(1) is None and m.group(0).strip()]
    position = 0

    def message(closing: bool) -> dict[str, list[Any]]:
        nonlocal position
        out: dict[str, list[Any]] = {}
        while position < len(tokens):
            token = tokens[position]
            if token.group(2) == "}":
                if not closing:
                    raise ValueError(f"unexpected '}}' at offset {token.start()}")
                position += 1
                return out
            name = token.group(4)
            if name is None:
                raise ValueError(f"expected a field name at offset {token.start()}")
            position += 1
            if position < len(tokens) and tokens[position].group(2) == ":":
                position += 1
            if position >= len(tokens):
                raise ValueError(f"field {name} has no value")
            value = tokens[position]
            position += 1
            if value.group(2) == "{":
                out.setdefault(name, []).append(message(True))
            elif value.group(3) is not None:
                out.setdefault(name, []).append(bytes(value.group(3), "utf-8").decode("unicode_escape"))
            elif value.group(4) is not None:
                out.setdefault(name, []).append(value.group(4))
            else:
                raise ValueError(f"field {name} has no value at offset {value.start()}")
        if closing:
            raise ValueError("a '{' is not closed")
        return out

    return message(False)


def read_projector(directory: Path, problems: list[str]) -> list[ProjectorEmbedding]:
    """The embeddings of the projector config in `directory` (none if it has no config)."""
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        return []
    try:
        config = parse_pbtxt(config_path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{config_path}: not a projector config ({exc}); its embeddings were skipped")
        return []
    found: dict[tuple[str, int], ProjectorEmbedding] = {}
    for entry in config.get("embeddings", []):
        try:
            embedding = _read_embedding(directory, entry)
        except (OSError, ValueError) as exc:
            problems.append(f"{config_path}: embedding {_first(entry, 'tensor_name', '?')!r} skipped: {exc}")
            continue
        if embedding is None:
            problems.append(
                f"{config_path}: embedding {_first(entry, 'tensor_name', '?')!r} has no tensor_path "
                "(a TensorFlow checkpoint); skipped"
            )
            continue
        found[(embedding.tag, embedding.step)] = embedding  # written again at the same step: the last one
    return list(found.values())


def _first(entry: dict[str, list[Any]], name: str, default: Any = None) -> Any:
    values = entry.get(name)
    return values[0] if values else default


def _read_embedding(directory: Path, entry: dict[str, list[Any]]) -> ProjectorEmbedding | None:
    tensor_path = _first(entry, "tensor_path")
    if tensor_path is None:
        return None
    name = str(_first(entry, "tensor_name", tensor_path))
    tag, _, suffix = name.rpartition(":")
    tag, step = (tag, int(suffix)) if tag and suffix.isdigit() else (name, 0)
    path = directory / tensor_path
    vectors = read_tensors_tsv(path)
    metadata_path = _first(entry, "metadata_path")
    metadata = read_metadata_tsv(directory / metadata_path, len(vectors)) if metadata_path else []
    sprite = _first(entry, "sprite")
    images: list[bytes] = []
    if sprite is not None and _first(sprite, "image_path"):
        dims = [int(d) for d in sprite.get("single_image_dim", [])]
        if len(dims) != 2:
            raise ValueError("its sprite needs two single_image_dim values (width, height)")
        images = cut_sprite(directory / _first(sprite, "image_path"), dims[0], dims[1], len(vectors))
    return ProjectorEmbedding(tag, step, path.stat().st_mtime, vectors, metadata, images)


def read_tensors_tsv(path: Path) -> np.ndarray:
    """tensors.tsv as N x D float32: one point per non-empty line, values separated by tabs."""
    lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path.name} holds no points")
    values = np.array(" ".join(lines).replace("\t", " ").split(), dtype=np.float64)
    if values.size % len(lines):
        raise ValueError(f"{path.name}: its {len(lines)} lines do not all hold the same number of values")
    return values.astype(np.float32).reshape(len(lines), values.size // len(lines))


def read_metadata_tsv(path: Path, rows: int) -> list[str]:
    """metadata.tsv as a JSON object per point: one column is "label"; several have a header line."""
    lines = path.read_text("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines and "\t" in lines[0]:
        header, lines = lines[0].split("\t"), lines[1:]
    else:
        header = ["label"]
    if len(lines) != rows:
        raise ValueError(f"{path.name} has {len(lines)} rows for {rows} points")
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return [encode(dict(zip(header, line.split("\t")))) for line in lines]


def cut_sprite(path: Path, width: int, height: int, rows: int) -> list[bytes]:
    """The sprite cut back into one PNG per point, row after row (TensorBoard's order)."""
    with Image.open(path) as sprite:
        sprite.load()
        per_row = sprite.width // width
        if per_row < 1 or math.ceil(rows / per_row) * height > sprite.height:
            raise ValueError(
                f"{path.name} ({sprite.width} x {sprite.height}) cannot hold {rows} images of {width} x {height}"
            )
        out = []
        for i in range(rows):
            x, y = (i % per_row) * width, (i // per_row) * height
            buffer = io.BytesIO()
            sprite.crop((x, y, x + width, y + height)).save(buffer, format="PNG", compress_level=1)
            out.append(buffer.getvalue())
    return out


def embedding_chunks(embedding: ProjectorEmbedding) -> Iterator[pb.Embeddings]:
    """The embedding as chunks of rows (tag_index 0: the caller sets it), in a fixed order."""
    rows, dims = embedding.vectors.shape
    image_bytes = max((len(b) for b in embedding.images), default=0)
    chunk_rows = max(1, CHUNK_BYTES // (dims * 4 + image_bytes + 64))
    for first in range(0, rows, chunk_rows):
        last = min(first + chunk_rows, rows)
        yield pb.Embeddings(
            tag_index=np.zeros(1, "<u4").tobytes(),
            step=np.array([embedding.step], "<i8").tobytes(),
            wall_time=np.array([embedding.wall_time], "<f8").tobytes(),
            first_row=np.array([first], "<u4").tobytes(),
            rows=np.array([last - first], "<u4").tobytes(),
            dims=np.array([dims], "<u4").tobytes(),
            total_rows=np.array([rows], "<u4").tobytes(),
            vectors=embedding.vectors[first:last].astype("<f4").tobytes(),
            metadata=embedding.metadata[first:last],
            image=embedding.images[first:last],
        )
