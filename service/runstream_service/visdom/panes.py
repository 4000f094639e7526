"""Visdom's windows as documents, pure: building a window, applying an update, splitting out points.

A window ("pane") is the JSON document the Visdom page draws: `{id, type, title, width, height,
content, ...}`, where a plot's content is a Plotly figure `{data: [traces], layout}`. Line and scatter
traces (Plotly `scatter`, `scattergl`, `scatter3d` with numeric x and y) are not kept in the document:
their per-point arrays (x, y, z, text, marker.color) are split out into `Columns`, stored one row per
point (storage.py), and the trace in the document keeps only `_rs_trace` (its id in the window) and
`_rs_columns` (which arrays it carries); how many points it has is the store's to count. So an
append adds rows and leaves the document alone: its cost does not grow with the window. Every other pane
(heatmap, bar, surface, image, text, ...) is kept whole, and updated as Visdom updates it.

The update rules follow Visdom 0.2.4's server (UpdateHandler.update): `append` concatenates x, y and
marker.color, `name` picks the trace (a new name adds a trace), `delete` removes the named traces (or
all), an all-missing x skips the trace, heatmaps append or prepend rows and columns, text appends
after a `<br>`, an image history appends an image. Where Visdom logs an error and answers as if it had
worked (a heatmap whose shapes do not match), BadRequest says what is wrong instead.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runstream_service.errors import BadRequest
from runstream_service.visdom.protocol import UpdatePost, WindowPost, is_missing

COLUMNAR_TYPES = frozenset({"scatter", "scattergl", "scatter3d"})
UPDATABLE_TRACES = frozenset({"scatter", "scattergl", "custom", "heatmap"})
HEATMAP_DIRS = {"appendRow": "y", "prependRow": "y", "appendColumn": "x", "prependColumn": "x"}
_INTERNAL = ("_rs_trace", "_rs_columns")


@dataclass
class Columns:
    """One trace's per-point arrays, all of one length; absent arrays are None."""

    x: list[Any]
    y: list[Any]
    z: list[Any] | None = None
    text: list[Any] | None = None
    color: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def names(self) -> list[str]:
        return [name for name in ("x", "y", "z", "text", "color") if getattr(self, name) is not None]


@dataclass(frozen=True)
class Rows:
    """Points to add after the points trace `trace` of a window holds (after `Change.clear`, if cleared)."""

    trace: int
    columns: Columns


@dataclass
class Change:
    """What storing a window or an update takes: the new document, traces to empty, points to add."""

    pane: dict[str, Any]
    clear: list[int] = field(default_factory=list)
    insert: list[Rows] = field(default_factory=list)


def _is_number_list(values: Any, length: int) -> bool:
    return (
        isinstance(values, list)
        and len(values) == length
        and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
    )


def _is_string_list(values: Any, length: int) -> bool:
    return isinstance(values, list) and len(values) == length and all(v is None or isinstance(v, str) for v in values)


def columns_of(trace: Mapping[str, Any]) -> Columns | None:
    """The trace's per-point arrays if it is a line or scatter trace that can be stored as rows."""
    if trace.get("type") not in COLUMNAR_TYPES:
        return None
    x, y = trace.get("x"), trace.get("y")
    if not isinstance(x, list) or not _is_number_list(x, len(x)) or not _is_number_list(y, len(x)):
        return None
    n = len(x)
    z = trace.get("z")
    if trace.get("type") == "scatter3d":
        if not _is_number_list(z, n):
            return None
    elif z is not None:
        return None
    text = trace.get("text")
    if text is not None and not isinstance(text, str) and not _is_string_list(text, n):
        return None
    marker = trace.get("marker")
    color = marker.get("color") if isinstance(marker, dict) else None
    if isinstance(color, list) and not _is_string_list(color, n):
        return None
    assert isinstance(y, list)
    return Columns(
        x=x,
        y=y,
        z=z if isinstance(z, list) else None,
        text=text if isinstance(text, list) else None,
        color=color if isinstance(color, list) else None,
    )


def _skeleton(trace: Mapping[str, Any], columns: Columns, trace_id: int) -> dict[str, Any]:
    """The trace without the arrays `columns` holds, marked with its id, length and arrays."""
    names = columns.names()
    kept = {k: v for k, v in trace.items() if k not in ("x", "y") and not (k in ("z", "text") and k in names)}
    if "color" in names:
        kept["marker"] = {k: v for k, v in trace["marker"].items() if k != "color"}
    kept.update({"_rs_trace": trace_id, "_rs_columns": names})
    return kept


def _add_trace(pane: dict[str, Any], trace: dict[str, Any], change: Change) -> dict[str, Any]:
    """The trace as the document keeps it; its points, if columnar, added to `change`."""
    columns = columns_of(trace)
    if columns is None:
        return trace
    trace_id = int(pane.get("_rs_next_trace", 0))
    pane["_rs_next_trace"] = trace_id + 1
    change.insert.append(Rows(trace_id, columns))
    return _skeleton(trace, columns, trace_id)


def new_window(post: WindowPost, win: str) -> Change:
    """The window that POST /events makes (Visdom's `window()`), its line and scatter points split out."""
    opts = post.opts
    pane: dict[str, Any] = {
        "command": "window",
        "id": win,
        "title": opts.get("title", ""),
        "inflate": opts.get("inflate", True),
        "width": opts.get("width"),
        "height": opts.get("height"),
        "contentID": secrets.token_hex(6),
    }
    first = post.data[0]
    kind = first["type"]
    change = Change(pane)
    if kind == "image_history":
        pane.update(
            {
                "content": [first.get("content")],
                "selected": 0,
                "type": kind,
                "show_slider": opts.get("show_slider", True),
            }
        )
    elif kind in ("image", "text", "properties"):
        pane.update({"content": first.get("content"), "type": kind})
    elif kind == "network":
        pane.update(
            {
                "content": first.get("content"),
                "type": kind,
                "directed": opts.get("directed", False),
                "showEdgeLabels": opts.get("showEdgeLabels", "hover"),
                "showVertexLabels": opts.get("showVertexLabels", "hover"),
            }
        )
    elif kind == "embeddings":
        content = first.get("content")
        if not isinstance(content, dict):
            raise BadRequest("an embeddings window needs 'data[0].content' to be an object")
        pane.update({"content": {**content, "has_previous": False}, "type": kind, "old_content": []})
    else:
        pane["type"] = "plot"
        pane["content"] = {"data": [], "layout": post.layout}
        for trace in post.data:
            pane["content"]["data"].append(_add_trace(pane, copy.deepcopy(trace), change))
    return change


def _apply_opts(pane: dict[str, Any], post: UpdatePost) -> None:
    """Visdom's update_window: layout entries into the figure's layout, opts onto the window."""
    content = pane.get("content")
    if isinstance(content, dict) and isinstance(content.get("layout"), dict):
        for name, value in post.layout.items():
            if value is not None:
                content["layout"][name] = value
    for name, value in post.opts.items():
        if value is not None and name not in _INTERNAL and not name.startswith("_rs_"):
            pane[name] = value
    legend = post.opts.get("legend")
    if isinstance(legend, list) and isinstance(content, dict):
        for i, trace in enumerate(content.get("data", [])):
            if i < len(legend):
                trace["name"] = legend[i]


def update_window(stored: Mapping[str, Any], post: UpdatePost) -> Change:
    """Apply POST /update to the stored document; the points to clear and add go in the Change."""
    pane = copy.deepcopy(dict(stored))
    change = Change(pane)
    kind = pane.get("type")
    first = post.data[0] if isinstance(post.data, list) and post.data else None
    if kind == "text":
        if first is None or not isinstance(first.get("content"), str):
            raise BadRequest("appending to a text window needs 'data[0].content', a string")
        pane["content"] = f"{pane['content']}<br>{first['content']}"
    elif kind == "image_history":
        _update_history(pane, post)
    elif kind == "embeddings":
        _update_embeddings(pane, post)
    elif kind == "plot":
        _update_plot(pane, post, change)
    else:
        raise BadRequest(
            f"window {post.win!r} is a {kind} window; only plots, text, image histories and embeddings can be updated"
        )
    return change


def _update_history(pane: dict[str, Any], post: UpdatePost) -> None:
    data = post.data
    if isinstance(data, list) and data and data[0].get("type") == "image_history":
        pane["content"].append(data[0].get("content"))
        pane["selected"] = len(pane["content"]) - 1
    elif isinstance(data, list) and data and data[0].get("type") == "image_update_selected":
        selected = data[0].get("content", 0)
        if not isinstance(selected, int):
            raise BadRequest("'image_update_selected' needs an integer index")
        pane["selected"] = min(len(pane["content"]) - 1, max(0, selected))
    else:
        raise BadRequest("updating an image history needs data[0].type 'image_history' or 'image_update_selected'")


def _update_embeddings(pane: dict[str, Any], post: UpdatePost) -> None:
    data = post.data
    if not isinstance(data, dict):
        raise BadRequest("updating embeddings needs 'data' to be an object with 'update_type'")
    if data.get("update_type") == "EntitySelected":
        pane["content"]["selected"] = data.get("selected")
    elif data.get("update_type") == "RegionSelected":
        pane["content"]["selected"] = None
        pane["old_content"].append(pane["content"].get("data"))
        pane["content"]["has_previous"] = True
        pane["content"]["data"] = data.get("points")
    else:
        raise BadRequest("'update_type' must be 'EntitySelected' or 'RegionSelected'")


def _update_plot(pane: dict[str, Any], post: UpdatePost, change: Change) -> None:
    pdata: list[dict[str, Any]] = pane["content"]["data"]
    if pdata and pdata[0].get("type") not in UPDATABLE_TRACES:
        raise BadRequest(
            f"win is not scatter, heatmap, custom, image_history, embeddings, or text; was {pdata[0].get('type')}"
        )
    _apply_opts(pane, post)
    new_data = post.data
    if post.name is None and new_data is None:
        return  # only the opts or the layout changed
    if not isinstance(new_data, list):
        raise BadRequest("'data' must be a list of traces")
    idxs = list(range(len(pdata)))
    if post.name is not None:
        if len(new_data) != 1 and not post.delete:
            raise BadRequest(f"updating the trace named {post.name!r} takes exactly one trace in 'data'")
        idxs = [i for i in idxs if pdata[i].get("name") == post.name]
    if post.delete:
        for i in reversed(idxs):
            removed = pdata.pop(i)
            if "_rs_trace" in removed:
                change.clear.append(int(removed["_rs_trace"]))
        return
    if not new_data:
        raise BadRequest("'data' must hold the traces to update")
    if new_data[0].get("type") == "heatmap" and (not idxs or pdata[idxs[0]].get("type") == "heatmap"):
        if not idxs:
            pdata.append(copy.deepcopy(new_data[0]))
        else:
            _update_heatmap(pdata[idxs[0]], copy.deepcopy(new_data[0]), post)
        return
    if not idxs:  # a new name: a new trace
        trace = copy.deepcopy(new_data[0])
        trace["name"] = post.name
        pdata.append(_add_trace(pane, trace, change))
        return
    if len(new_data) < len(idxs):
        raise BadRequest(f"'data' has {len(new_data)} traces; the window has {len(idxs)} to update")
    for n, i in enumerate(idxs):
        new = new_data[n]
        x, y = new.get("x"), new.get("y")
        if not isinstance(x, list) or not isinstance(y, list):
            raise BadRequest(f"data[{n}]: 'x' and 'y' must be lists")
        if len(x) != len(y):
            raise BadRequest(f"data[{n}]: 'x' has {len(x)} values and 'y' {len(y)}; they must be as many")
        if all(is_missing(v) for v in x):
            continue  # a masked update, as in Visdom
        if "_rs_trace" in pdata[i]:
            _update_columnar(pdata[i], new, n, post.append, change)
        else:
            _update_document_trace(pdata[i], new, post.append)


def _update_columnar(trace: dict[str, Any], new: dict[str, Any], n: int, append: bool, change: Change) -> None:
    x, y = new["x"], new["y"]
    if not _is_number_list(x, len(x)) or not _is_number_list(y, len(x)):
        raise BadRequest(f"data[{n}]: 'x' and 'y' of a line or scatter trace must be numbers (or null)")
    length = len(x)
    z = new.get("z") if _is_number_list(new.get("z"), length) else None
    text = new.get("text") if _is_string_list(new.get("text"), length) else None
    marker = new.get("marker")
    color = marker.get("color") if isinstance(marker, dict) else None
    color = color if _is_string_list(color, length) else None
    columns = Columns(x=x, y=y, z=z, text=text, color=color)
    trace_id = int(trace["_rs_trace"])
    if append:
        names = set(trace["_rs_columns"]) | set(columns.names())
        if len(names) > len(trace["_rs_columns"]):  # leaves the document unchanged, most of the time
            trace["_rs_columns"] = sorted(names, key=_COLUMN_ORDER.index)
    else:
        change.clear.append(trace_id)
        trace["_rs_columns"] = columns.names()
    change.insert.append(Rows(trace_id, columns))


_COLUMN_ORDER = ["x", "y", "z", "text", "color"]


def _update_document_trace(trace: dict[str, Any], new: dict[str, Any], append: bool) -> None:
    for axis in ("x", "y"):
        old = trace.get(axis)
        trace[axis] = (list(old or []) + new[axis]) if append else new[axis]
    new_marker = new.get("marker")
    if isinstance(new_marker, dict) and "color" in new_marker:
        marker = trace.setdefault("marker", {})
        old_color = marker.get("color")
        if append and isinstance(old_color, list) and isinstance(new_marker["color"], list):
            marker["color"] = old_color + new_marker["color"]
        else:
            marker["color"] = new_marker["color"]


def _update_heatmap(plot: dict[str, Any], new: dict[str, Any], post: UpdatePost) -> None:
    dz = new.get("z")
    if not isinstance(dz, list) or not all(isinstance(row, list) for row in dz) or not dz:
        raise BadRequest("a heatmap update needs 'z', a non-empty list of rows")
    direction = post.update_dir or "replace"
    update_names = False
    if direction != "replace":
        del new["z"]
        z = plot.get("z") or [[]]
        check = HEATMAP_DIRS[direction]
        if check == "y" and len(z[0]) != len(dz[0]):
            raise BadRequest(f"the heatmap has {len(z[0])} columns and the new rows {len(dz[0])}; they must match")
        if check == "x" and len(z) != len(dz):
            raise BadRequest(f"the heatmap has {len(z)} rows and the new columns {len(dz)}; they must match")
        if plot.get(check) is not None and new.get(check) is not None:
            if any(label in plot[check] for label in new[check]):
                raise BadRequest("the new row or column names are already in the heatmap; give unique names")
            update_names = True
        elif plot.get(check) is not None:
            raise BadRequest("the heatmap has row or column names; the update must give names for the new ones")
        elif new.get(check) is not None:
            raise BadRequest("the update gives row or column names, but the heatmap has none")
    if direction == "appendRow":
        plot["z"] = plot["z"] + dz
        if update_names:
            plot["y"] = plot["y"] + new["y"]
    elif direction == "prependRow":
        plot["z"] = dz + plot["z"]
        if update_names:
            plot["y"] = new["y"] + plot["y"]
    elif direction == "appendColumn":
        plot["z"] = [row + extra for row, extra in zip(plot["z"], dz, strict=True)]
        if update_names:
            plot["x"] = plot["x"] + new["x"]
    elif direction == "prependColumn":
        plot["z"] = [extra + row for row, extra in zip(plot["z"], dz, strict=True)]
        if update_names:
            plot["x"] = new["x"] + plot["x"]
    if post.append:
        new.pop("x", None)
        new.pop("y", None)
    for key, value in new.items():
        if value is not None or not post.append:
            plot[key] = value


def join_window(pane: Mapping[str, Any], points: Mapping[int, Columns]) -> dict[str, Any]:
    """The window as Visdom holds it: each columnar trace's arrays put back, internal keys removed."""
    out = {k: v for k, v in pane.items() if not k.startswith("_rs_")}
    content = out.get("content")
    if out.get("type") == "plot" and isinstance(content, dict):
        out["content"] = {
            **content,
            "data": [join_trace(t, points.get(int(t.get("_rs_trace", -1)))) for t in content["data"]],
        }
    return out


def join_trace(trace: Mapping[str, Any], columns: Columns | None) -> dict[str, Any]:
    if "_rs_trace" not in trace:
        return dict(trace)
    out = {k: v for k, v in trace.items() if k not in _INTERNAL}
    names = trace.get("_rs_columns", ["x", "y"])
    columns = columns or Columns(x=[], y=[])
    out["x"], out["y"] = columns.x, columns.y
    if "z" in names:
        out["z"] = columns.z
    if "text" in names:
        out["text"] = columns.text
    if "color" in names:
        out["marker"] = {**(trace.get("marker") or {}), "color": columns.color}
    return out


def restore_window(pane: Mapping[str, Any]) -> Change:
    """A window given whole (set_window_data, fork): its line and scatter traces split out again."""
    doc = {k: v for k, v in copy.deepcopy(dict(pane)).items() if not k.startswith("_rs_")}
    change = Change(doc)
    content = doc.get("content")
    if doc.get("type") == "plot" and isinstance(content, dict) and isinstance(content.get("data"), list):
        content["data"] = [_add_trace(doc, trace, change) for trace in content["data"]]
    return change
