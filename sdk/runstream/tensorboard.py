"""A drop-in `SummaryWriter` for `torch.utils.tensorboard` and tensorboardX users.

    from runstream.tensorboard import SummaryWriter   # was: from torch.utils.tensorboard import ...

The constructor and the methods take the same arguments, with the same names and defaults, as
tensorboardX's and torch's writers. Points go to a runstream run (server from RUNSTREAM_SERVER, as
`runstream.init()`); the log directory (`log_dir`/`logdir`, or the default `runs/DATE_HOST[comment]`)
becomes the run's name. `add_scalar` costs the calling thread about a microsecond: it appends one
tuple to the run's buffer, as `Run.log` does.

`add_graph` traces the model with torch.jit.trace and stores its graph (tag `graph`, steps 0, 1, ...).
`add_embedding` stores the matrix, its metadata and one image per point (the Projector's data).
Audio, videos, PR curves, meshes, tensors, image boxes and custom-scalar layouts go to their own kinds
(the Run.log_* methods); every public method of both writers exists here, explicitly.

As tensorboardX: `use_metadata` supplies `global_step` and `walltime` to the calls inside it, and
logging after `close()` reopens the writer: a new Run joins the same run id, which goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import numpy as np

from runstream import _inputs
from runstream._run import Run, init
from runstream._transport import TransportError, for_settings

logger = logging.getLogger("runstream")

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
_MAX_PR_THRESHOLDS = 127  # both writers cap num_thresholds here (TensorBoard's plugin breaks above it)


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
        self._config = dict(kwargs.pop("config", None) or {})
        run_id = kwargs.pop("run_id", None)
        self._warned: set[str] = set()
        if kwargs:
            self._warn_once("kwargs", f"runstream SummaryWriter ignores the arguments {sorted(kwargs)}")
        if purge_step is not None:
            self._warn_once("purge_step", "runstream SummaryWriter ignores purge_step: runstream keeps every point")
        self._run: Run = init(name=self._logdir, config=self._config, run_id=run_id, **self._init_kwargs)
        self._keys: dict[str, tuple[str, ...]] = {}
        self._closed = False
        self._default_metadata: dict[str, Any] = {}  # use_metadata's global_step and walltime
        self._described: dict[str, tuple[str, str]] = {}  # tag -> (display_name, description) last sent
        self._layout: list[dict[str, Any]] = []  # the run's custom-scalar categories, as tensorboardX adds them
        self._group_tags: dict[str, int] = {}  # add_scalars' tags -> points exported by export_scalars_to_json

    # -- what TensorBoard's writers have -------------------------------------

    @property
    def run(self) -> Run:
        """The runstream run this writer logs to (after close(), the next call reopens it)."""
        return self._run

    def get_logdir(self) -> str:
        return self._logdir

    @contextlib.contextmanager
    def use_metadata(self, *, global_step: int | None = None, walltime: float | None = None) -> Iterator[SummaryWriter]:
        """The calls inside `with writer.use_metadata(global_step=n):` that give no step (or wall time) of
        their own log at these, as tensorboardX's; not nested."""
        if self._default_metadata:
            raise RuntimeError("use_metadata is already in effect; it does not nest")
        if global_step is None and walltime is None:
            raise ValueError("use_metadata needs global_step or walltime (or both)")
        self._default_metadata = {"global_step": global_step, "walltime": walltime}
        try:
            yield self
        finally:
            self._default_metadata = {}

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
        if self._closed:
            self._reopen()
        if self._default_metadata:
            global_step, walltime = self._defaults(global_step, walltime)
        keys = self._keys.get(tag)
        if keys is None:
            keys = self._keys[tag] = self._run._scalar_keys(tag)
        if type(scalar_value) is not float:
            scalar_value = _scalar_value(scalar_value)
        if type(global_step) is not int or global_step < 0:
            global_step = _step(global_step)
        if display_name or summary_description:
            self._describe(tag, display_name, summary_description)
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
            tag = f"{main_tag}/{key}"
            self.add_scalar(tag, value, global_step, walltime)
            self._group_tags.setdefault(tag, 0)

    def export_scalars_to_json(self, path: str) -> None:
        """Write what tensorboardX writes: {LOG_DIR/main_tag/key: [[wall_time, step, value], ...]} for the
        tags of `add_scalars`, with the points logged since the previous export, read back from what the
        server stored (flushed first). Points are in step order, as the server returns them."""
        series = self._read_scalars()
        out: dict[str, list[list[float]]] = {}
        for tag, exported in self._group_tags.items():
            points = series.get(tag)
            if points is None:
                continue
            fresh = points[exported:]
            self._group_tags[tag] = len(points)
            if fresh:
                out[os.path.join(self._logdir, tag)] = fresh
        with open(path, "w") as file:
            json.dump(out, file)

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
        step, wall = self._when(global_step, walltime)
        self._live().log_histogram(tag, _inputs.to_numpy(values), step, bins, wall_time=wall)

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
        step, wall = self._when(global_step, walltime)
        self._live().log_histogram(tag, (counts, edges), step, wall_time=wall)

    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        step, wall = self._when(global_step, walltime)
        self._live().log_image(tag, _to_hwc_uint8(img_tensor, dataformats), step, wall_time=wall)

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Several images as one grid of up to 8 columns, as TensorBoard's writers store them; also a list
        of same-sized CHW or HWC images (`dataformats` 'CHW' or 'HWC'), as tensorboardX takes them."""
        if isinstance(img_tensor, list):
            if dataformats.upper() not in ("CHW", "HWC"):
                raise ValueError(f"a list of images needs dataformats 'CHW' or 'HWC', got {dataformats!r}")
            img_tensor = np.stack([_inputs.to_numpy(image) for image in img_tensor])
            dataformats = "N" + dataformats
        self.add_image(tag, img_tensor, global_step, walltime, dataformats)

    def add_image_with_boxes(
        self,
        tag: str,
        img_tensor: Any,
        box_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        rescale: float = 1,
        dataformats: str = "CHW",
        labels: Sequence[str] | str | None = None,
        **kwargs: Any,
    ) -> None:
        """The image with its boxes (N x 4: x_min, y_min, x_max, y_max, in pixels) and labels kept beside it
        (the web UI draws them over it), rather than drawn into its pixels. `rescale` scales both."""
        if kwargs:
            raise TypeError(f"add_image_with_boxes got unexpected keyword arguments {sorted(kwargs)}")
        image = _to_hwc_uint8(img_tensor, dataformats)
        boxes = _inputs.to_numpy(box_tensor).astype(np.float64)
        if labels is not None:
            labels = [labels] if isinstance(labels, str) else list(labels)
            if len(labels) != (boxes.shape[0] if boxes.ndim == 2 else 1):
                logger.warning(
                    "runstream: %s: the number of labels differs from the number of boxes; labels skipped", tag
                )
                labels = None
        if rescale != 1:
            from PIL import Image

            height, width = image.shape[:2]
            size = (max(1, int(width * rescale)), max(1, int(height * rescale)))
            image = np.asarray(Image.fromarray(image).resize(size))
            boxes = boxes * rescale
        step, wall = self._when(global_step, walltime)
        self._live().log_image(tag, image, step, wall_time=wall, boxes=boxes, labels=labels)

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

    def add_video(
        self,
        tag: str,
        vid_tensor: Any,
        global_step: int | None = None,
        fps: float = 4,
        walltime: float | None = None,
        dataformats: str = "NTCHW",
    ) -> None:
        """N videos of T frames (NTCHW; uint8, or float in [0, 1]) tiled into one, as tensorboardX tiles
        them, stored as an animated PNG (no moviepy needed; browsers play it in an <img>)."""
        step, wall = self._when(global_step, walltime)
        self._live().log_video(tag, _video_grid(_inputs.to_numpy(vid_tensor), dataformats), fps, step, wall_time=wall)

    def add_audio(
        self,
        tag: str,
        snd_tensor: Any,
        global_step: int | None = None,
        sample_rate: int = 44100,
        walltime: float | None = None,
    ) -> None:
        """A clip: L frames (mono; torch's 1 x L too) or L x C; amplitudes in [-1, 1] (louder is clipped,
        with a warning, as tensorboardX clips)."""
        samples = _inputs.to_numpy(snd_tensor)
        if samples.ndim == 2 and samples.shape[0] == 1 and samples.shape[1] > 8:  # torch's 1 x L
            samples = samples[0]
        if samples.size and np.nanmax(np.abs(samples)) > 1:
            self._warn_once(f"audio:{tag}", f"audio {tag!r}: amplitudes beyond [-1, 1] are clipped")
        step, wall = self._when(global_step, walltime)
        self._live().log_audio(tag, samples, sample_rate, step, wall_time=wall)

    def add_text(
        self, tag: str, text_string: str, global_step: int | None = None, walltime: float | None = None
    ) -> None:
        step, wall = self._when(global_step, walltime)
        self._live().log_text(tag, text_string, step, wall_time=wall)

    def add_tensor(self, tag: str, tensor: Any, global_step: int | None = None, walltime: float | None = None) -> None:
        """The tensor's values as they are (torch's add_tensor): the `tensors` view."""
        step, wall = self._when(global_step, walltime)
        self._live().log_tensor(tag, tensor, step, wall_time=wall)

    def add_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """TensorBoard's precision-recall curve of binary `labels` and `predictions` in [0, 1]; at most 127
        thresholds, as both writers cap it."""
        step, wall = self._when(global_step, walltime)
        thresholds = min(num_thresholds, _MAX_PR_THRESHOLDS)
        self._live().log_pr_curve(tag, labels, predictions, thresholds, weights, step, wall_time=wall)

    def add_pr_curve_raw(
        self,
        tag: str,
        true_positive_counts: Any,
        false_positive_counts: Any,
        true_negative_counts: Any,
        false_negative_counts: Any,
        precision: Any,
        recall: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """A curve already computed: its thresholds are the length of the six sequences (num_thresholds and
        weights are accepted and, as in both writers, do not change the data)."""
        step, wall = self._when(global_step, walltime)
        self._live().log_pr_curve_raw(
            tag, true_positive_counts, false_positive_counts, true_negative_counts, false_negative_counts,
            precision, recall, step, wall_time=wall,
        )  # fmt: skip

    def add_mesh(
        self,
        tag: str,
        vertices: Any,
        colors: Any = None,
        faces: Any = None,
        config_dict: Mapping[str, Any] | None = None,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Meshes or point clouds: vertices B x N x 3, colors B x N x 3 (0..255), faces B x F x 3; mesh b
        of the batch is sample b. `config_dict` (three.js camera, lights, material) is kept with each."""
        step, wall = self._when(global_step, walltime)
        self._live().log_mesh(tag, vertices, colors, faces, config_dict, step, wall_time=wall)

    def add_custom_scalars(self, layout: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
        """tensorboardX's layout {category: {chart title: ["Multiline", [tags]] | ["Margin", [value, lower,
        upper]]}}: its charts are added to the run's layout (a chart of the same category and title is
        replaced), which the Scalars tab shows as chart groups."""
        for category, charts in layout.items():
            for title, spec in charts.items():
                if not isinstance(spec, Sequence) or len(spec) != 2 or spec[0] not in ("Multiline", "Margin"):
                    raise ValueError(f"chart {title!r} of {category!r} must be ['Multiline' or 'Margin', [tags]]")
                self._add_chart(category, title, spec[0], list(spec[1]))
        self._live().set_custom_scalars_layout({"categories": self._layout})

    def add_custom_scalars_multilinechart(
        self, tags: Sequence[str], category: str = "default", title: str = "untitled"
    ) -> None:
        self.add_custom_scalars({category: {title: ["Multiline", list(tags)]}})

    def add_custom_scalars_marginchart(
        self, tags: Sequence[str], category: str = "default", title: str = "untitled"
    ) -> None:
        """A margin chart of three tags: the value, its lower and its upper bound."""
        if len(tags) != 3:
            raise ValueError(f"a margin chart needs 3 tags (value, lower, upper), got {len(tags)}")
        self.add_custom_scalars({category: {title: ["Margin", list(tags)]}})

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
        self._live().log_embedding(tag, mat, metadata, label_img, _step(global_step))

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
        self._live().log_graph(doc, tag="graph")

    def add_onnx_graph(self, onnx_model_file: str | None = None, prototxt: str | None = None) -> None:
        """The graph of an ONNX model file (tensorboardX names it `onnx_model_file`, torch `prototxt`),
        stored as add_graph's are (tag `graph`). Needs the onnx package."""
        from runstream._model_files import onnx_document

        path = onnx_model_file if onnx_model_file is not None else prototxt
        if path is None:
            raise TypeError("add_onnx_graph needs the path of an ONNX model file")
        self._live().log_graph(onnx_document(str(path)), tag="graph")

    def add_openvino_graph(self, xmlname: str) -> None:
        """The graph of an OpenVINO IR model (its .xml file), stored as add_graph's are (tag `graph`)."""
        from runstream._model_files import openvino_document

        self._live().log_graph(openvino_document(str(xmlname)), tag="graph")

    def flush(self) -> None:
        """Wait until everything logged so far is stored by the server (at most 60 s)."""
        if not self._closed:
            self._run.flush()

    def close(self) -> None:
        """Finish the run; logging again reopens it (the same run goes on), as tensorboardX's writer."""
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

    # -- runstream's own ---------------------------------------------------

    def _live(self) -> Run:
        """The run, reopened if the writer was closed."""
        if self._closed:
            self._reopen()
        return self._run

    def _reopen(self) -> None:
        """Join the same run again (a new Run, a new writer id): the server marks it running again."""
        self._run = init(name=self._logdir, config=self._config, run_id=self._run.id, **self._init_kwargs)
        self._keys = {}
        self._described = {}
        self._closed = False

    def _defaults(self, global_step: Any, walltime: Any) -> tuple[Any, Any]:
        meta = self._default_metadata
        if global_step is None:
            global_step = meta.get("global_step")
        if walltime is None:
            walltime = meta.get("walltime")
        return global_step, walltime

    def _when(self, global_step: Any, walltime: Any) -> tuple[int, float | None]:
        """The step and wall time of a call: its own, else use_metadata's; no step means 0, as there."""
        if self._default_metadata:
            global_step, walltime = self._defaults(global_step, walltime)
        return _step(global_step), None if walltime is None else float(walltime)

    def _describe(self, tag: str, display_name: str, description: str) -> None:
        """Send a tag's display name and description when they change (not with every point)."""
        if self._described.get(tag) != (display_name, description):
            self._described[tag] = (display_name, description)
            self._run.set_tag_info(tag, display_name=display_name, description=description)

    def _add_chart(self, category: str, title: str, kind: str, tags: list[str]) -> None:
        if kind == "Margin":
            if len(tags) != 3:
                raise ValueError(f"margin chart {title!r} needs 3 tags (value, lower, upper), got {len(tags)}")
            chart: dict[str, Any] = {
                "title": title,
                "margin": {"series": [{"value": tags[0], "lower": tags[1], "upper": tags[2]}]},
            }
        else:
            chart = {"title": title, "multiline": {"tags": [str(t) for t in tags]}}
        for group in self._layout:
            if group["title"] == category:
                group["charts"] = [c for c in group["charts"] if c["title"] != title] + [chart]
                return
        self._layout.append({"title": category, "closed": False, "charts": [chart]})

    def _read_scalars(self) -> dict[str, list[list[float]]]:
        """This rank's stored scalars by tag, as tensorboardX's [wall_time, step, value] rows."""
        if not self._closed:
            self._run.flush()
        transport = for_settings(self._run._settings) if self._closed else self._run._transport
        try:
            series = transport.read_scalars(self._run.id, timeout=60.0)
        except TransportError as exc:
            if exc.code == "UNIMPLEMENTED":
                raise RuntimeError(
                    f"the runstream server at {transport.server} cannot read scalars back (no ReadScalars); "
                    "export_scalars_to_json needs a newer server: upgrade it"
                ) from None
            raise
        finally:
            if self._closed:
                transport.close()
        out: dict[str, list[list[float]]] = {}
        for s in series:
            if s.rank != self._run.rank:
                continue
            steps = np.frombuffer(s.step, "<i8").tolist()
            walls = np.frombuffer(s.wall_time, "<f8").tolist()
            values = np.frombuffer(s.value, "<f8").tolist()
            out.setdefault(s.tag, []).extend([w, st, v] for w, st, v in zip(walls, steps, values))
        return out

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)


def _video_grid(video: np.ndarray, dataformats: str) -> np.ndarray:
    """N videos (in `dataformats`, NTCHW by default) as one T x H' x W' x C video: tiled in a grid of
    2**floor(log2(N) / 2) rows, N padded with black videos to a power of two, as tensorboardX tiles them."""
    fmt = dataformats.upper()
    if len(fmt) != 5 or set(fmt) != set("NTCHW") or video.ndim != 5:
        raise ValueError(f"video of shape {video.shape} does not match dataformats {dataformats!r} (5 letters NTCHW)")
    v = video.transpose([fmt.find(c) for c in "NTCHW"])
    count, frames, channels, height, width = v.shape
    padded = 1 << (count - 1).bit_length() if count > 1 else 1
    if padded != count:
        v = np.concatenate([v, np.zeros((padded - count, frames, channels, height, width), v.dtype)])
    rows = 2 ** ((count.bit_length() - 1) // 2)
    cols = padded // rows
    v = v.reshape(rows, cols, frames, channels, height, width).transpose(2, 0, 4, 1, 5, 3)
    return np.ascontiguousarray(v.reshape(frames, rows * height, cols * width, channels))


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
