"""A drop-in `SummaryWriter` for `torch.utils.tensorboard` and tensorboardX users.

    from runstream.tensorboard import SummaryWriter   # was: from torch.utils.tensorboard import ...

The constructor and the methods take the same arguments, with the same names and defaults, as
tensorboardX's and torch's writers. Points go to a runstream run (server from RUNSTREAM_SERVER, as
`runstream.init()`); the log directory (`log_dir`/`logdir`, or the default `runs/DATE_HOST[comment]`)
becomes the run's name. `add_scalar` costs the calling thread about a microsecond: it appends one
tuple to the run's buffer, as `Run.log` does.

`add_graph` traces the model with torch.jit.trace and stores its graph (tag `graph`, steps 0, 1, ...).
`add_embedding` stores the matrix, its metadata and one image per point (the Projector's data).
Methods that runstream cannot store yet (`add_audio`, `add_video`,
`add_mesh`, `add_pr_curve`, ...) warn once each and do nothing; they never raise.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import numpy as np

from runstream import _inputs
from runstream._run import Run, init

__all__ = ["SummaryWriter", "tensorflow_bins"]

_now = time.time


def tensorflow_bins() -> np.ndarray:
    """TensorBoard's default histogram buckets: 0 and +-1e-12 * 1.1**k up to 1e20, as edges.

    The same definition tensorboardX's `bins='tensorflow'` uses (TensorFlow's exponential buckets).
    """
    positive = []
    v = 1e-12
    while v < 1e20:
        positive.append(v)
        v *= 1.1
    edges = np.array(positive)
    return np.concatenate((-edges[::-1], [0.0], edges))


_TF_BINS: np.ndarray | None = None

UNSUPPORTED = (
    "add_audio",
    "add_custom_scalars",
    "add_custom_scalars_marginchart",
    "add_custom_scalars_multilinechart",
    "add_image_with_boxes",
    "add_mesh",
    "add_onnx_graph",
    "add_openvino_graph",
    "add_pr_curve",
    "add_pr_curve_raw",
    "add_video",
)


def _default_logdir(comment: str) -> str:
    current_time = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", current_time + "_" + socket.gethostname() + comment)


def _scalar_value(value: Any) -> float:
    if type(value) is float:
        return value
    return _inputs.to_float("scalar_value", value)


def _step(global_step: Any) -> int:
    if global_step is None:
        return 0  # as TensorBoard's writers: an event without a step has step 0
    if type(global_step) is int and global_step >= 0:
        return global_step
    return _inputs.check_step(global_step)


def _to_hwc_uint8(img: Any, dataformats: str) -> np.ndarray:
    """As tensorboardX: to HWC (grayscale repeated to 3 channels, NCHW tiled in a grid of 8 columns),
    floats scaled by 255 and clipped to 0..255 (truncated, as tensorboardX does)."""
    array = _inputs.to_numpy(img)
    fmt = dataformats.upper()
    if len(set(fmt)) != len(fmt) or array.ndim != len(fmt):
        raise ValueError(f"image of shape {array.shape} does not match dataformats {dataformats!r}")
    if len(fmt) == 4:
        nchw = array.transpose([fmt.find(c) for c in "NCHW"])
        hwc = _make_grid(nchw).transpose(1, 2, 0)
    elif len(fmt) == 3:
        hwc = array.transpose([fmt.find(c) for c in "HWC"])
        if hwc.shape[2] == 1:
            hwc = np.concatenate([hwc, hwc, hwc], 2)
    elif len(fmt) == 2:
        hw = array.transpose([fmt.find(c) for c in "HW"])
        hwc = np.stack([hw, hw, hw], 2)
    else:
        raise ValueError(f"dataformats must have 2 to 4 letters, got {dataformats!r}")
    if hwc.dtype != np.uint8:
        hwc = (hwc.astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(hwc)


def _make_grid(images: np.ndarray, ncols: int = 8) -> np.ndarray:
    if images.shape[1] == 1:
        images = np.concatenate([images, images, images], 1)
    if images.shape[1] not in (3, 4):
        raise ValueError(f"images need 1, 3 or 4 channels, got shape {images.shape}")
    count, channels, height, width = images.shape
    ncols = min(count, ncols)
    nrows = math.ceil(count / ncols)
    canvas = np.zeros((channels, height * nrows, width * ncols), dtype=images.dtype)
    for i in range(count):
        y, x = divmod(i, ncols)
        canvas[:, y * height : (y + 1) * height, x * width : (x + 1) * width] = images[i]
    return canvas


class SummaryWriter:
    """Writes to a runstream run what tensorboardX's / torch's SummaryWriter writes to event files.

    Extra keyword arguments (not in TensorBoard's writers): `project`, `server`, `config`,
    `run_id`, `token`, as `runstream.init()` takes them.
    """

    def __init__(
        self,
        log_dir: str | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        write_to_disk: bool = True,
        logdir: str | None = None,
        comet_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # tensorboardX's first positional argument is `logdir`, torch's `log_dir`: both land here.
        log_dir = log_dir if log_dir is not None else logdir
        if not log_dir:
            log_dir = _default_logdir(comment)
        self._logdir = str(log_dir)
        self._init_kwargs = {k: kwargs.pop(k) for k in ("project", "server", "token", "tls_ca") if k in kwargs}
        config = dict(kwargs.pop("config", None) or {})
        run_id = kwargs.pop("run_id", None)
        self._warned: set[str] = set()
        if kwargs:
            self._warn_once("kwargs", f"runstream SummaryWriter ignores the arguments {sorted(kwargs)}")
        if purge_step is not None:
            self._warn_once("purge_step", "runstream SummaryWriter ignores purge_step: runstream keeps every point")
        self._run: Run = init(name=self._logdir, config=config, run_id=run_id, **self._init_kwargs)
        self._keys: dict[str, tuple[str, ...]] = {}
        self._closed = False

    # -- what TensorBoard's writers have -------------------------------------

    @property
    def run(self) -> Run:
        """The runstream run this writer logs to."""
        return self._run

    def get_logdir(self) -> str:
        return self._logdir

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        new_style: bool = False,
        double_precision: bool = False,
        display_name: str = "",
        summary_description: str = "",
    ) -> None:
        keys = self._keys.get(tag)
        if keys is None:
            keys = self._keys[tag] = self._run._scalar_keys(tag)
        if type(scalar_value) is not float:
            scalar_value = _scalar_value(scalar_value)
        if type(global_step) is not int or global_step < 0:
            global_step = _step(global_step)
        self._run._log_scalar(keys, global_step, _now() if walltime is None else walltime, scalar_value)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: Mapping[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """One tag per key, `main_tag/key` (TensorBoard shows these as one chart of several runs)."""
        walltime = _now() if walltime is None else walltime
        for key, value in tag_scalar_dict.items():
            self.add_scalar(f"{main_tag}/{key}", value, global_step, walltime)

    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: int | None = None,
        bins: Any = "tensorflow",
        walltime: float | None = None,
        max_bins: int | None = None,
    ) -> None:
        global _TF_BINS
        if isinstance(bins, str) and bins == "tensorflow":
            if _TF_BINS is None:
                _TF_BINS = tensorflow_bins()
            bins = _TF_BINS
        elif isinstance(bins, (list, tuple)):
            bins = np.asarray(bins, dtype=np.float64)
        elif isinstance(bins, str):
            bins = bins.lower()
        self._run.log_histogram(tag, _inputs.to_numpy(values), _step(global_step), bins, wall_time=walltime)

    def add_histogram_raw(
        self,
        tag: str,
        min: float,
        max: float,
        num: float,
        sum: float,
        sum_squares: float,
        bucket_limits: Any,
        bucket_counts: Any,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """TensorBoard's buckets: bucket i holds values up to bucket_limits[i]; the first starts at `min`."""
        limits = _inputs.to_numpy(bucket_limits).astype(np.float64).reshape(-1)
        counts = _inputs.to_numpy(bucket_counts).astype(np.float64).reshape(-1)
        if limits.size != counts.size or limits.size == 0:
            raise ValueError("len(bucket_limits) must equal len(bucket_counts), and be at least 1")
        edges, counts = tensorboard_buckets_to_edges(float(min), limits, counts)
        self._run.log_histogram(tag, (counts, edges), _step(global_step), wall_time=walltime)

    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        self._run.log_image(tag, _to_hwc_uint8(img_tensor, dataformats), _step(global_step), wall_time=walltime)

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Several images as one grid of up to 8 columns, as TensorBoard's writers store them."""
        self.add_image(tag, img_tensor, global_step, walltime, dataformats)

    def add_figure(
        self,
        tag: str,
        figure: Any,
        global_step: int | None = None,
        close: bool = True,
        walltime: float | None = None,
    ) -> None:
        """A matplotlib figure (or a list of them, as a grid) rendered to an image; needs matplotlib."""
        if isinstance(figure, list):
            images = np.stack([_render_figure(f, close) for f in figure])
            self.add_images(tag, images, global_step, walltime, dataformats="NHWC")
        else:
            self.add_image(tag, _render_figure(figure, close), global_step, walltime, dataformats="HWC")

    def add_text(
        self, tag: str, text_string: str, global_step: int | None = None, walltime: float | None = None
    ) -> None:
        self._run.log_text(tag, text_string, _step(global_step), wall_time=walltime)

    def add_hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, Any],
        hparam_domain_discrete: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        global_step: int | None = None,
        name: str | None = None,
    ) -> None:
        """As TensorBoard's writers: a child run `<log_dir>/<run_name or time>` whose config holds
        `{"hparams": hparam_dict}` and whose scalars are the metrics."""
        if not isinstance(hparam_dict, Mapping) or not isinstance(metric_dict, Mapping):
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        child = run_name or name or str(time.time())
        hparams = {k: _hparam_value(v) for k, v in hparam_dict.items()}
        config: dict[str, Any] = {"hparams": hparams}
        if hparam_domain_discrete:
            config["hparam_domain_discrete"] = {k: list(v) for k, v in hparam_domain_discrete.items()}
        run = init(name=os.path.join(self._logdir, child), config=config, **self._init_kwargs)
        try:
            step = _step(global_step)
            wall = _now()
            for key, value in metric_dict.items():
                run._log_scalar(run._scalar_keys(key), step, wall, _scalar_value(value))
        finally:
            run.finish()

    def flush(self) -> None:
        """Wait until everything logged so far is stored by the server (at most 60 s)."""
        if not self._closed:
            self._run.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._run.finish()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._closed:
            self._closed = True
            self._run.finish("failed" if exc_type is not None else "finished")

    # -- what runstream cannot store yet ---------------------------------------

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def _unsupported(self, method: str) -> None:
        self._warn_once(
            method,
            f"runstream SummaryWriter.{method} is not supported yet; the call is ignored "
            "(scalars, histograms, images, text and hparams are stored)",
        )

    def add_audio(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_audio")

    def add_custom_scalars(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_custom_scalars")

    def add_custom_scalars_marginchart(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_custom_scalars_marginchart")

    def add_custom_scalars_multilinechart(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_custom_scalars_multilinechart")

    def add_embedding(
        self,
        mat: Any,
        metadata: Any = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: Any = None,
    ) -> None:
        """The points of `mat` (N x D), as torch's and tensorboardX's writers take them: `metadata` one
        label per point, or with `metadata_header` one row of values per point; `label_img` one NCHW
        image per point. No `global_step` means step 0, as there. See `Run.log_embedding` for limits."""
        if metadata is not None and metadata_header is not None:
            metadata = _inputs.metadata_rows(list(metadata_header), list(metadata))
        self._run.log_embedding(tag, mat, metadata, label_img, _step(global_step))

    def add_graph(
        self, model: Any, input_to_model: Any = None, verbose: bool = False, use_strict_trace: bool = True
    ) -> None:
        """Trace `model` on `input_to_model` and store its graph under the tag `graph`; a run's first graph
        is step 0, the next step 1. A tracing error raises GraphTraceError (TensorBoard shows an empty tab)."""
        from runstream._graph import trace_model

        doc = trace_model(model, input_to_model, use_strict_trace)
        if verbose:
            for node in doc["nodes"]:
                print(node["name"], node["op"], node["output_shape"])
        self._run.log_graph(doc, tag="graph")

    def add_image_with_boxes(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_image_with_boxes")

    def add_mesh(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_mesh")

    def add_onnx_graph(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_onnx_graph")

    def add_openvino_graph(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_openvino_graph")

    def add_pr_curve(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_pr_curve")

    def add_pr_curve_raw(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_pr_curve_raw")

    def add_video(self, *args: Any, **kwargs: Any) -> None:
        self._unsupported("add_video")

    def __getattr__(self, name: str) -> Any:
        # Any other method of TensorBoard's writers (add_event, add_summary, export_scalars_to_json, ...):
        # warn once and do nothing, rather than raise in the middle of a training job.
        if name.startswith("add_") or name in ("export_scalars_to_json", "use_metadata", "reopen", "file_writer"):

            def ignored(*args: Any, **kwargs: Any) -> None:
                self._unsupported(name)

            return ignored
        raise AttributeError(name)


def tensorboard_buckets_to_edges(
    minimum: float, limits: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """TensorBoard's (bucket_limit, bucket) to runstream's edges (one more) and counts.

    Bucket i of TensorBoard holds the values up to limits[i] (and above limits[i-1]); the first
    bucket's left edge is the histogram's min, or just below limits[0] when min is not smaller.
    Non-finite limits (TensorFlow writes +-DBL_MAX or inf at the ends) are clamped.
    """
    limits = np.nan_to_num(limits.astype(np.float64), posinf=np.finfo(np.float64).max, neginf=-np.finfo(np.float64).max)
    counts = counts.astype(np.float64)
    lowest = -np.finfo(np.float64).max
    if math.isfinite(minimum) and minimum < limits[0]:
        left = minimum
    else:
        left = float(np.nextafter(limits[0], -np.inf)) if limits[0] > lowest else -math.inf
    if not math.isfinite(left):  # limits[0] is -DBL_MAX: fold the first bucket into the second
        if limits.size == 1:
            return np.array([limits[0], np.nextafter(limits[0], np.inf)]), counts
        counts = np.concatenate(([counts[0] + counts[1]], counts[2:]))
        return limits, counts
    return np.concatenate(([left], limits)), counts


def _hparam_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return getattr(value, "__name__", None) or json.dumps(value, default=str)


def _render_figure(figure: Any, close: bool) -> np.ndarray:
    try:
        import matplotlib.backends.backend_agg as backend_agg
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("add_figure needs matplotlib: pip install matplotlib") from exc
    canvas = backend_agg.FigureCanvasAgg(figure)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
    if close:
        plt.close(figure)
    return image
