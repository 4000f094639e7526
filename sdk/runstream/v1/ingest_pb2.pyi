from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OpenRunRequest(_message.Message):
    __slots__ = ("project", "name", "config_json", "run_id", "rank", "world_size", "host", "start_time")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    project: str
    name: str
    config_json: str
    run_id: str
    rank: int
    world_size: int
    host: str
    start_time: float
    def __init__(self, project: _Optional[str] = ..., name: _Optional[str] = ..., config_json: _Optional[str] = ..., run_id: _Optional[str] = ..., rank: _Optional[int] = ..., world_size: _Optional[int] = ..., host: _Optional[str] = ..., start_time: _Optional[float] = ...) -> None: ...

class OpenRunResponse(_message.Message):
    __slots__ = ("run_id", "created")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    created: bool
    def __init__(self, run_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class Scalars(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "value", "row_points")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ROW_POINTS_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    value: bytes
    row_points: bytes
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., value: _Optional[bytes] = ..., row_points: _Optional[bytes] = ...) -> None: ...

class Histograms(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "bucket_count", "edges", "counts", "min", "max", "sum", "sum_squares")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_COUNT_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    SUM_SQUARES_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    bucket_count: bytes
    edges: bytes
    counts: bytes
    min: bytes
    max: bytes
    sum: bytes
    sum_squares: bytes
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., bucket_count: _Optional[bytes] = ..., edges: _Optional[bytes] = ..., counts: _Optional[bytes] = ..., min: _Optional[bytes] = ..., max: _Optional[bytes] = ..., sum: _Optional[bytes] = ..., sum_squares: _Optional[bytes] = ...) -> None: ...

class Images(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "data", "boxes")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    data: _containers.RepeatedScalarFieldContainer[bytes]
    boxes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., data: _Optional[_Iterable[bytes]] = ..., boxes: _Optional[_Iterable[str]] = ...) -> None: ...

class Texts(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "text")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    text: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., text: _Optional[_Iterable[str]] = ...) -> None: ...

class Graphs(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "doc")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    doc: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., doc: _Optional[_Iterable[str]] = ...) -> None: ...

class Embeddings(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "first_row", "rows", "dims", "total_rows", "vectors", "metadata", "image")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROW_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    DIMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    first_row: bytes
    rows: bytes
    dims: bytes
    total_rows: bytes
    vectors: bytes
    metadata: _containers.RepeatedScalarFieldContainer[str]
    image: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., first_row: _Optional[bytes] = ..., rows: _Optional[bytes] = ..., dims: _Optional[bytes] = ..., total_rows: _Optional[bytes] = ..., vectors: _Optional[bytes] = ..., metadata: _Optional[_Iterable[str]] = ..., image: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Audio(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "wav")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    WAV_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    wav: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., wav: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Videos(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "fps", "data")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    fps: bytes
    data: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., fps: _Optional[bytes] = ..., data: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PrCurves(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "thresholds", "values")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    thresholds: bytes
    values: bytes
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., thresholds: _Optional[bytes] = ..., values: _Optional[bytes] = ...) -> None: ...

class Meshes(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "sample", "vertex_count", "face_count", "color_count", "vertices", "colors", "faces", "config")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    VERTEX_COUNT_FIELD_NUMBER: _ClassVar[int]
    FACE_COUNT_FIELD_NUMBER: _ClassVar[int]
    COLOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERTICES_FIELD_NUMBER: _ClassVar[int]
    COLORS_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    sample: bytes
    vertex_count: bytes
    face_count: bytes
    color_count: bytes
    vertices: bytes
    colors: bytes
    faces: bytes
    config: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., sample: _Optional[bytes] = ..., vertex_count: _Optional[bytes] = ..., face_count: _Optional[bytes] = ..., color_count: _Optional[bytes] = ..., vertices: _Optional[bytes] = ..., colors: _Optional[bytes] = ..., faces: _Optional[bytes] = ..., config: _Optional[_Iterable[str]] = ...) -> None: ...

class Tensors(_message.Message):
    __slots__ = ("tag_index", "step", "wall_time", "dtype", "ndim", "shape", "data")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    NDIM_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    dtype: _containers.RepeatedScalarFieldContainer[str]
    ndim: bytes
    shape: bytes
    data: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., dtype: _Optional[_Iterable[str]] = ..., ndim: _Optional[bytes] = ..., shape: _Optional[bytes] = ..., data: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TagInfo(_message.Message):
    __slots__ = ("tag", "display_name", "description")
    TAG_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    tag: str
    display_name: str
    description: str
    def __init__(self, tag: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class VisdomCall(_message.Message):
    __slots__ = ("endpoint", "body")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    body: bytes
    def __init__(self, endpoint: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("run_id", "rank", "writer_id", "seq", "tags", "scalars", "histograms", "images", "texts", "graphs", "embeddings", "audio", "videos", "pr_curves", "meshes", "tensors", "tag_info", "custom_scalars_layout", "visdom_calls", "source_offset")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WRITER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SCALARS_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAMS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    GRAPHS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    PR_CURVES_FIELD_NUMBER: _ClassVar[int]
    MESHES_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    TAG_INFO_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_SCALARS_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    VISDOM_CALLS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    writer_id: str
    seq: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    scalars: Scalars
    histograms: Histograms
    images: Images
    texts: Texts
    graphs: Graphs
    embeddings: Embeddings
    audio: Audio
    videos: Videos
    pr_curves: PrCurves
    meshes: Meshes
    tensors: Tensors
    tag_info: _containers.RepeatedCompositeFieldContainer[TagInfo]
    custom_scalars_layout: str
    visdom_calls: _containers.RepeatedCompositeFieldContainer[VisdomCall]
    source_offset: int
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ..., writer_id: _Optional[str] = ..., seq: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., scalars: _Optional[_Union[Scalars, _Mapping]] = ..., histograms: _Optional[_Union[Histograms, _Mapping]] = ..., images: _Optional[_Union[Images, _Mapping]] = ..., texts: _Optional[_Union[Texts, _Mapping]] = ..., graphs: _Optional[_Union[Graphs, _Mapping]] = ..., embeddings: _Optional[_Union[Embeddings, _Mapping]] = ..., audio: _Optional[_Union[Audio, _Mapping]] = ..., videos: _Optional[_Union[Videos, _Mapping]] = ..., pr_curves: _Optional[_Union[PrCurves, _Mapping]] = ..., meshes: _Optional[_Union[Meshes, _Mapping]] = ..., tensors: _Optional[_Union[Tensors, _Mapping]] = ..., tag_info: _Optional[_Iterable[_Union[TagInfo, _Mapping]]] = ..., custom_scalars_layout: _Optional[str] = ..., visdom_calls: _Optional[_Iterable[_Union[VisdomCall, _Mapping]]] = ..., source_offset: _Optional[int] = ...) -> None: ...

class WriteAck(_message.Message):
    __slots__ = ("writer_id", "seq", "duplicate")
    WRITER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    writer_id: str
    seq: int
    duplicate: bool
    def __init__(self, writer_id: _Optional[str] = ..., seq: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class FinishRunRequest(_message.Message):
    __slots__ = ("run_id", "rank", "status", "end_time")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    rank: int
    status: str
    end_time: float
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ..., status: _Optional[str] = ..., end_time: _Optional[float] = ...) -> None: ...

class FinishRunResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VisdomReadRequest(_message.Message):
    __slots__ = ("endpoint", "body")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    body: bytes
    def __init__(self, endpoint: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class VisdomReadReply(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    def __init__(self, body: _Optional[bytes] = ...) -> None: ...

class ReadScalarsRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class ScalarSeries(_message.Message):
    __slots__ = ("tag", "rank", "step", "wall_time", "value")
    TAG_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    tag: str
    rank: int
    step: bytes
    wall_time: bytes
    value: bytes
    def __init__(self, tag: _Optional[str] = ..., rank: _Optional[int] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., value: _Optional[bytes] = ...) -> None: ...

class GetProgressRequest(_message.Message):
    __slots__ = ("writer_id",)
    WRITER_ID_FIELD_NUMBER: _ClassVar[int]
    writer_id: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, writer_id: _Optional[_Iterable[str]] = ...) -> None: ...

class GetProgressReply(_message.Message):
    __slots__ = ("seq", "source_offset")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    seq: _containers.RepeatedScalarFieldContainer[int]
    source_offset: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, seq: _Optional[_Iterable[int]] = ..., source_offset: _Optional[_Iterable[int]] = ...) -> None: ...
