"""The one list of data kinds the store holds, and the names each kind goes by.

A kind's points travel in one field of the wire's Batch, are decoded into one attribute of
DecodedBatch (validate.py), get series ids of their kind, are appended to one point table
(store/tables.py builds its rows) and are read by tag through one SQL view (store/schema.py).
Every such name is here, and tests/unit/test_kinds.py checks them against the proto, the
decoder, the table builders and the schema, so a kind added here and not there fails a test.

Adding a kind: its message in
proto/runstream/v1/ingest.proto, its decoder in validate.py, its builder in store/tables.py, its
table and view in store/schema.py, and one line in KINDS.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every point table starts with these: which series, where on the step axis, from which rank, when.
POINT_KEY_COLUMNS = ("series_id", "step", "rank", "wall_time")


@dataclass(frozen=True)
class Kind:
    name: str  # series.kind in the database, and the kind named in errors ("no scalar tag ...")
    field: str  # the Batch message's field and DecodedBatch's attribute that carry these points
    table: str  # the point table the writer appends to
    view: str  # the SQL view of these points by run_id and tag; also the key of the HTTP API's tag lists
    values: tuple[str, ...]  # the point table's columns after POINT_KEY_COLUMNS, in order

    @property
    def columns(self) -> tuple[str, ...]:
        """The point table's columns, in order (the rows the writer appends have exactly these)."""
        return POINT_KEY_COLUMNS + self.values


SCALAR = Kind("scalar", "scalars", "scalar_points_hot", "scalars", ("value",))
HISTOGRAM = Kind(
    "histogram",
    "histograms",
    "histogram_points",
    "histograms",
    ("count", "min", "max", "sum", "sum_squares", "bucket_limits", "bucket_counts"),
)
# boxes: NULL, or JSON {"boxes": [[x_min, y_min, x_max, y_max], ...], "labels": [...]} (add_image_with_boxes).
IMAGE = Kind("image", "images", "image_points", "images", ("width", "height", "mime", "data", "boxes"))
TEXT = Kind("text", "texts", "text_points", "texts", ("text",))
# A model's graph document (JSON) with its counts; the graph_nodes view unnests its nodes.
GRAPH = Kind("graph", "graphs", "graph_points", "graphs", ("nodes", "edges", "parameters", "doc"))
# One row per point of an embedding; an embedding is (series, step, rank), its points idx 0..total_rows-1.
EMBEDDING = Kind(
    "embedding", "embeddings", "embedding_points", "embeddings", ("idx", "vector", "metadata", "image", "total_rows")
)
# A WAV file as sent, with what its header says.
AUDIO = Kind("audio", "audio", "audio_points", "audio", ("sample_rate", "channels", "frames", "wav"))
# An animation a browser plays in an <img>: APNG (the SDK) or GIF (tensorboardX's event files).
VIDEO = Kind("video", "videos", "video_points", "videos", ("width", "height", "frames", "fps", "mime", "data"))
# TensorBoard's six rows of T values, one list each.
PR_CURVE = Kind(
    "pr_curve",
    "pr_curves",
    "pr_curve_points",
    "pr_curves",
    (
        "thresholds",
        "true_positives",
        "false_positives",
        "true_negatives",
        "false_negatives",
        "precision",
        "recall",
    ),
)
# A mesh or point cloud; a logged batch of meshes is one point per `sample`.
MESH = Kind(
    "mesh",
    "meshes",
    "mesh_points",
    "meshes",
    ("sample", "vertex_count", "face_count", "vertices", "colors", "faces", "config"),
)
TENSOR = Kind("tensor", "tensors", "tensor_points", "tensors", ("dtype", "shape", "data"))

KINDS: tuple[Kind, ...] = (SCALAR, HISTOGRAM, IMAGE, TEXT, GRAPH, EMBEDDING, AUDIO, VIDEO, PR_CURVE, MESH, TENSOR)
# Batch fields already in the wire schema whose kind is being built: a batch that carries one is refused
# with INVALID_ARGUMENT naming the field (validate.py), until its kind joins KINDS.
PENDING_FIELDS: frozenset[str] = frozenset()
# Batch fields that are not points of a kind: what a writer says of its tags, the run's custom-scalar
# layout, and Visdom calls (runstream.visdom.Visdom), each applied in the batch's commit.
BATCH_EXTRAS: tuple[str, ...] = ("tag_info", "custom_scalars_layout", "visdom_calls")
# Extras not stored yet: a batch that carries one is refused with INVALID_ARGUMENT naming it.
PENDING_EXTRAS: frozenset[str] = frozenset()
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
