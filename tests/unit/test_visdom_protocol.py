"""Visdom's protocol and window documents, pure: no server, no DuckDB."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runstream_service.errors import BadRequest
from runstream_service.visdom import panes, protocol
from runstream_service.visdom.panes import Columns


def line_msg(x: list[Any], y: list[Any], **extra: Any) -> dict[str, Any]:
    trace = {"type": "scatter", "mode": "lines", "name": "1", "x": x, "y": y, "marker": {"size": 3}}
    return {"data": [trace], "win": "w", "eid": "main", "layout": {"title": "t"}, "opts": {"title": "t"}, **extra}


def stored_line(x: list[float], y: list[float]) -> tuple[dict[str, Any], dict[int, Columns]]:
    change = panes.new_window(protocol.window_post(line_msg(x, y)), "w")
    return change.pane, {r.trace: r.columns for r in change.insert}


def update(pane: dict[str, Any], **msg: Any) -> panes.Change:
    return panes.update_window(pane, protocol.update_post({"win": "w", "eid": "main", **msg}))


def test_bodies_with_nan_tokens_parse_and_bad_ones_name_the_problem() -> None:
    body = protocol.parse_body(b'{"z": [NaN, Infinity, -Infinity]}')
    assert math.isnan(body["z"][0]) and body["z"][1:] == [math.inf, -math.inf]
    with pytest.raises(BadRequest, match="not valid JSON"):
        protocol.parse_body(b'{"z": ')
    with pytest.raises(BadRequest, match="JSON object"):
        protocol.parse_body(b"[]")
    with pytest.raises(BadRequest, match="UTF-8"):
        protocol.parse_body(b'"\xff"')
    with pytest.raises(protocol.BodyTooLarge):
        protocol.parse_body(b" " * (protocol.MAX_BODY_BYTES + 1))


def test_env_names_default_to_main_and_lose_slashes() -> None:
    assert protocol.env_of({}) == "main"
    assert protocol.env_of({"eid": "a/b"}) == "a_b"
    with pytest.raises(BadRequest, match="'eid'"):
        protocol.env_of({"eid": ["x"]})
    assert protocol.window_ref({"win": ""}).win == ""  # check_connection() asks for window ''


def test_requests_are_checked() -> None:
    with pytest.raises(BadRequest, match="'data'"):
        protocol.window_post({"win": "w"})
    with pytest.raises(BadRequest, match="Lua"):
        protocol.window_post({"func": "x", "data": [{"type": "text"}]})
    with pytest.raises(BadRequest, match="2 x, 1 y"):
        protocol.window_post(line_msg([0, 1], [1]))
    with pytest.raises(BadRequest, match="updateDir"):
        protocol.update_post({"win": "w", "updateDir": "up"})
    with pytest.raises(BadRequest, match="'win'"):
        protocol.update_post({"data": []})
    assert protocol.boolean(True) == "true" and protocol.boolean(False) == "false"
    assert protocol.save_envs({"data": ["a/b"]}) == ["a_b"]


def test_a_line_is_stored_as_a_skeleton_and_columns() -> None:
    pane, points = stored_line([0.0, 1.0], [2.0, 3.0])
    trace = pane["content"]["data"][0]
    assert "x" not in trace and "y" not in trace and trace["_rs_trace"] == 0
    assert points[0].x == [0.0, 1.0] and points[0].y == [2.0, 3.0]
    joined = panes.join_window(pane, points)
    assert joined["content"]["data"][0]["x"] == [0.0, 1.0] and "_rs_trace" not in joined["content"]["data"][0]
    assert joined["type"] == "plot" and joined["title"] == "t"


def test_traces_that_are_not_numbers_stay_in_the_document() -> None:
    change = panes.new_window(protocol.window_post(line_msg(["a", "b"], [1.0, 2.0])), "w")
    assert change.insert == [] and change.pane["content"]["data"][0]["x"] == ["a", "b"]
    bars = {"data": [{"type": "bar", "x": [1], "y": [2]}], "win": "b"}
    assert panes.new_window(protocol.window_post(bars), "b").insert == []


def test_append_adds_rows_and_leaves_the_document_alone() -> None:
    pane, _ = stored_line([0.0], [1.0])
    change = update(pane, **line_msg([1.0], [5.0], append=True))
    assert change.pane == pane and change.clear == []
    assert [(r.trace, r.columns.x, r.columns.y) for r in change.insert] == [(0, [1.0], [5.0])]


def test_replace_clears_the_trace_and_a_new_name_adds_one() -> None:
    pane, _ = stored_line([0.0], [1.0])
    replaced = update(pane, **line_msg([7.0], [8.0], append=False))
    assert replaced.clear == [0] and replaced.insert[0].columns.x == [7.0]
    added = update(pane, **line_msg([1.0], [2.0], append=True, name="val"))
    names = [t["name"] for t in added.pane["content"]["data"]]
    assert names == ["1", "val"] and added.insert[0].trace == 1


def test_remove_by_name_and_masked_updates() -> None:
    pane, _ = stored_line([0.0], [1.0])
    added = update(pane, **line_msg([1.0], [2.0], append=True, name="val")).pane
    removed = update(added, data=[], name="val", delete=True)
    assert [t["name"] for t in removed.pane["content"]["data"]] == ["1"] and removed.clear == [1]
    masked = update(pane, **line_msg([math.nan], [1.0], append=True))
    assert masked.insert == []


def test_mismatched_appends_and_wrong_targets_are_refused() -> None:
    pane, _ = stored_line([0.0], [1.0])
    with pytest.raises(BadRequest, match="as many"):
        update(pane, **line_msg([1.0, 2.0], [1.0], append=True))
    with pytest.raises(BadRequest, match="numbers"):
        update(pane, **line_msg(["a"], [1.0], append=True))
    image = panes.new_window(protocol.window_post({"data": [{"type": "image", "content": {"src": "x"}}]}), "i").pane
    with pytest.raises(BadRequest, match="image window"):
        update(image, data=[{"type": "image", "content": {}}])


def test_opts_and_layout_updates() -> None:
    pane, _ = stored_line([0.0], [1.0])
    change = update(pane, layout={"title": "new"}, opts={"title": "new", "legend": ["loss"]})
    assert change.pane["title"] == "new" and change.pane["content"]["layout"]["title"] == "new"
    assert change.pane["content"]["data"][0]["name"] == "loss"


def heatmap(z: list[list[float]], x: list[str] | None = None) -> dict[str, Any]:
    msg = {"data": [{"type": "heatmap", "z": z, "x": x, "y": None}], "win": "h", "layout": {}, "opts": {}}
    return panes.new_window(protocol.window_post(msg), "h").pane


def heat_update(pane: dict[str, Any], z: list[list[float]], direction: str, x: list[str] | None = None) -> Any:
    msg = {"data": [{"type": "heatmap", "z": z, "x": x, "y": None}], "append": True, "updateDir": direction}
    return update(pane, **msg).pane["content"]["data"][0]


def test_heatmap_rows_and_columns() -> None:
    pane = heatmap([[1.0, 2.0]])
    assert heat_update(pane, [[3.0, 4.0]], "appendRow")["z"] == [[1.0, 2.0], [3.0, 4.0]]
    assert heat_update(pane, [[0.0, 0.0]], "prependRow")["z"] == [[0.0, 0.0], [1.0, 2.0]]
    assert heat_update(pane, [[9.0]], "appendColumn")["z"] == [[1.0, 2.0, 9.0]]
    with pytest.raises(BadRequest, match="columns"):
        heat_update(pane, [[1.0]], "appendRow")
    named = heatmap([[1.0, 2.0]], x=["a", "b"])
    assert heat_update(named, [[3.0]], "appendColumn", x=["c"])["x"] == ["a", "b", "c"]
    with pytest.raises(BadRequest, match="unique"):
        heat_update(named, [[3.0]], "appendColumn", x=["a"])


def test_text_and_image_history_appends() -> None:
    text = panes.new_window(protocol.window_post({"data": [{"type": "text", "content": "a"}]}), "t").pane
    assert update(text, data=[{"type": "text", "content": "b"}]).pane["content"] == "a<br>b"
    first = {"data": [{"type": "image_history", "content": {"src": "1"}}]}
    history = panes.new_window(protocol.window_post(first), "i").pane
    more = update(history, data=[{"type": "image_history", "content": {"src": "2"}}]).pane
    assert more["content"] == [{"src": "1"}, {"src": "2"}] and more["selected"] == 1


def test_a_window_given_whole_is_split_again() -> None:
    pane, points = stored_line([0.0, 1.0], [2.0, 3.0])
    joined = panes.join_window(pane, points)
    again = panes.restore_window(joined)
    assert panes.join_window(again.pane, {r.trace: r.columns for r in again.insert}) == joined


def test_a_version_2_file_gains_the_visdom_tables(tmp_path: Any) -> None:
    import duckdb

    from runstream_service.store.schema import SCHEMA_VERSION, create_schema

    con = duckdb.connect(str(tmp_path / "v2.duckdb"))
    con.execute("CREATE TABLE schema_info (version INTEGER NOT NULL); INSERT INTO schema_info VALUES (2)")
    create_schema(con)
    assert con.execute("SELECT version FROM schema_info").fetchall() == [(SCHEMA_VERSION,)]
    assert con.execute("SELECT count(*) FROM visdom_windows").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM visdom_points").fetchall() == [(0,)]
