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
    __slots__ = ("tag_index", "step", "wall_time", "data")
    TAG_INDEX_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    tag_index: bytes
    step: bytes
    wall_time: bytes
    data: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, tag_index: _Optional[bytes] = ..., step: _Optional[bytes] = ..., wall_time: _Optional[bytes] = ..., data: _Optional[_Iterable[bytes]] = ...) -> None: ...

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

class Batch(_message.Message):
    __slots__ = ("run_id", "rank", "writer_id", "seq", "tags", "scalars", "histograms", "images", "texts", "graphs", "embeddings")
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
    def __init__(self, run_id: _Optional[str] = ..., rank: _Optional[int] = ..., writer_id: _Optional[str] = ..., seq: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., scalars: _Optional[_Union[Scalars, _Mapping]] = ..., histograms: _Optional[_Union[Histograms, _Mapping]] = ..., images: _Optional[_Union[Images, _Mapping]] = ..., texts: _Optional[_Union[Texts, _Mapping]] = ..., graphs: _Optional[_Union[Graphs, _Mapping]] = ..., embeddings: _Optional[_Union[Embeddings, _Mapping]] = ...) -> None: ...

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
