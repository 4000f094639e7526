"""The query client, for notebooks: SQL through a server's HTTP API, answered as Arrow.

``runstream.query(sql)`` sends one read-only statement to ``POST /api/sql`` asking for an Arrow IPC stream
(``Accept: application/vnd.apache.arrow.stream``: no row cap, the server's time limit and byte cap) and
returns a ``pyarrow.Table``. ``runstream.runs()`` and ``runstream.history()`` are SQL over the documented
views (``runs``, ``scalars``) shaped as pandas DataFrames; they need no endpoint of their own.

The server's HTTP address comes from ``url=``, else ``RUNSTREAM_URL``, else http://127.0.0.1:8080 (the
``--http`` default); the token and the CA to trust as for ``runstream.init()`` (``token=``/RUNSTREAM_TOKEN,
``tls_ca=``/RUNSTREAM_TLS_CA). pyarrow and pandas are imported only here, when called, so the SDK's
base install (a training job's) stays without them.

A statement the server refuses or that fails raises ``QueryError`` with the server's message, also when it
fails after the stream started: the server then ends the stream with a batch whose custom metadata
holds ``runstream.error``.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from runstream._errors import AuthError, RunstreamError, ServerUnavailableError
from runstream._settings import SETTINGS, Setting

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ERROR_KEY = b"runstream.error"
URL_SETTING = Setting("url", "RUNSTREAM_URL", "http://127.0.0.1:8080", "the server's HTTP address (`--http`)")
INSTALL_HINT = "pip install 'runstream[query]'"
WALL_TIME_SUFFIX = ".wall_time"


class QueryError(RunstreamError):
    """The server refused the statement or it failed (also mid-stream); the message is the server's."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: the HTTP base address, the bearer token ("" for none), the CA file ("")."""

    url: str
    token: str
    tls_ca: str

    def context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://"):
            return None
        return ssl.create_default_context(cafile=self.tls_ca or None)


def endpoint(
    url: str | None = None,
    token: str | None = None,
    tls_ca: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """Arguments win over the environment, which wins over the defaults. An address without a scheme is
    https:// when a CA is given (as init() uses TLS then), else http://."""
    env = os.environ if environ is None else environ
    given = {"token": token, "tls_ca": tls_ca}
    values = {s.name: given[s.name] if given[s.name] is not None else env.get(s.env, s.default) for s in _TOKEN_TLS}
    address = url if url is not None else env.get(URL_SETTING.env, "") or URL_SETTING.default
    address = address.strip().rstrip("/")
    if not address:
        raise ValueError("url must be the server's HTTP address, e.g. http://127.0.0.1:8080")
    if "://" not in address:
        address = ("https://" if values["tls_ca"] else "http://") + address
    if not address.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {address!r}")
    return Endpoint(url=address, token=str(values["token"]), tls_ca=str(values["tls_ca"]))


_TOKEN_TLS = tuple(s for s in SETTINGS if s.name in ("token", "tls_ca"))


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc
    except ImportError:
        raise ImportError(f"runstream's query client needs pyarrow: {INSTALL_HINT}") from None
    return pyarrow


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"runstream.runs() and runstream.history() need pandas: {INSTALL_HINT}") from None
    return pandas


# --- SQL text (pure) ------------------------------------------------------------------------------


def sql_literal(value: str) -> str:
    """A string as a SQL literal: the server's SQL takes no parameters, so values are quoted here."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("a run id, project or tag cannot contain a NUL character")
    return "'" + value.replace("'", "''") + "'"


def runs_sql(project: str | None) -> str:
    where = "" if project is None else f" WHERE project = {sql_literal(project)}"
    return f"SELECT * FROM runs{where} ORDER BY created_at, run_id"


def history_sql(run_id: str, tags: Sequence[str] | None, rank: int, wall_time: bool) -> str:
    columns = "tag, step, value" + (", wall_time" if wall_time else "")
    where = f"run_id = {sql_literal(run_id)} AND rank = {rank}"
    if tags is not None:
        where += f" AND tag IN ({', '.join(sql_literal(t) for t in tags)})"
    # by wall time within a step, so that the last point written at a step is the one kept
    return f"SELECT {columns} FROM scalars WHERE {where} ORDER BY step, wall_time"


def _tag_list(tags: str | Sequence[str] | None) -> list[str] | None:
    if tags is None:
        return None
    listed = [tags] if isinstance(tags, str) else list(tags)
    if not listed or not all(isinstance(t, str) and t for t in listed):
        raise ValueError(f"tags must be a tag name or a list of tag names, got {tags!r}")
    return list(dict.fromkeys(listed))


# --- shaping (pure over Arrow and pandas) ---------------------------------------------------------


def read_stream(source: IO[bytes] | Any) -> pa.Table:
    """An Arrow IPC stream as a Table; raises QueryError when the server ended it with an error."""
    pa = _pyarrow()
    try:
        reader = pa.ipc.open_stream(source)
        batches = []
        while True:
            try:
                batch, metadata = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            if metadata is not None and ERROR_KEY in metadata:
                raise QueryError(metadata[ERROR_KEY].decode(errors="replace"))
            batches.append(batch)
    except (pa.ArrowException, OSError, ValueError, http.client.HTTPException) as exc:
        raise QueryError(f"the server's answer ended early or was not an Arrow stream ({exc}); try again") from None
    return pa.Table.from_batches(batches, schema=reader.schema)


def runs_frame(table: pa.Table) -> pd.DataFrame:
    """The `runs` view as a DataFrame, its JSON `config` flattened into `config.KEY` columns (nested
    objects with dots: `config.optimizer.lr`)."""
    pd = _pandas()
    if "config" not in table.column_names:
        return table.to_pandas()
    configs = [_config_dict(text) for text in table.column("config").to_pylist()]
    frame = table.drop_columns(["config"]).to_pandas()
    flat = pd.json_normalize(configs, sep=".") if configs else pd.DataFrame()
    flat.columns = [f"config.{key}" for key in flat.columns]
    flat.index = frame.index
    return pd.concat([frame, flat], axis=1)


def _config_dict(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {"value": value}


def history_frame(table: pa.Table, tags: Sequence[str] | None, wall_time: bool) -> pd.DataFrame:
    """Rows (tag, step, value[, wall_time]) as one row per step and one column per tag (NaN where a tag
    has no point at that step), in the order of `tags` (all the run's tags, sorted, when None); with
    `wall_time`, each tag's column is followed by `TAG.wall_time` (seconds since the epoch)."""
    pd = _pandas()
    frame = table.to_pandas()
    names = list(tags) if tags is not None else sorted({str(t) for t in frame["tag"]})
    frame = frame.drop_duplicates(["tag", "step"], keep="last")  # the last written at a step
    fields = ["value", "wall_time"] if wall_time else ["value"]
    wide = {field: frame.pivot(index="step", columns="tag", values=field).reindex(columns=names) for field in fields}
    columns: dict[str, Any] = {}
    for name in names:
        columns[name] = wide["value"][name]
        if wall_time:
            columns[name + WALL_TIME_SUFFIX] = wide["wall_time"][name]
    index = wide["value"].index.astype("int64")
    result = pd.DataFrame(columns, index=index)
    result.index.name = "step"
    return result.astype("float64")


# --- HTTP -----------------------------------------------------------------------------------------


def _post_sql(where: Endpoint, sql: str, timeout: float) -> Any:
    """POST /api/sql asking for Arrow; returns the open response (a file object) once the status is 200."""
    headers = {"Content-Type": "application/json", "Accept": ARROW_STREAM}
    if where.token:
        headers["Authorization"] = f"Bearer {where.token}"
    body = json.dumps({"sql": sql}).encode()
    request = urllib.request.Request(where.url + "/api/sql", data=body, headers=headers, method="POST")
    try:
        reply = urllib.request.urlopen(request, timeout=timeout, context=where.context())
    except urllib.error.HTTPError as exc:
        message = _error_message(exc)
        if exc.code in (401, 403):
            raise AuthError(
                f"the runstream server at {where.url} refused the token: {message}. Set RUNSTREAM_TOKEN "
                "(or token=...) to a token with the scope 'read'."
            ) from None
        raise QueryError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            raise ServerUnavailableError(
                f"TLS with the runstream server at {where.url} failed: {reason}. For a certificate that is not "
                "signed by a CA the system trusts, pass tls_ca= or set RUNSTREAM_TLS_CA to the CA's PEM file."
            ) from None
        raise ServerUnavailableError(
            f"cannot reach the runstream server's HTTP API at {where.url}: {reason}. Is `runstream serve` "
            "running there? Pass url= or set RUNSTREAM_URL to its --http address."
        ) from None
    content_type = reply.headers.get("Content-Type", "")
    if not content_type.startswith(ARROW_STREAM):
        reply.close()
        raise QueryError(
            f"the server at {where.url} answered {content_type or 'without a content type'}, not an Arrow "
            "stream: it is older than this SDK; upgrade runstream on the server"
        )
    return reply


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(exc)["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code} {exc.reason}"


# --- the public functions -------------------------------------------------------------------------


def query(
    sql: str,
    url: str | None = None,
    token: str | None = None,
    tls_ca: str | None = None,
    *,
    timeout: float = 300.0,
) -> pa.Table:
    """Run one read-only SQL statement on the server (README "Query with SQL" lists the views) and
    return its whole answer as a pyarrow.Table.

    `timeout` is the client's wait for each read from the socket; the server stops the query itself
    after its `--sql-timeout` of DuckDB work or at its byte cap (`--sql-max-bytes`, 2 GiB by default).
    Raises QueryError (refused, failed, stopped), AuthError (token) or ServerUnavailableError."""
    if not isinstance(sql, str) or not sql.strip():
        raise ValueError("sql must be one SELECT statement, e.g. runstream.query('SELECT * FROM runs')")
    _pyarrow()  # say what to install before a round trip
    where = endpoint(url, token, tls_ca)
    with _post_sql(where, sql, timeout) as reply:
        return read_stream(reply)


def runs(
    project: str | None = None,
    url: str | None = None,
    token: str | None = None,
    tls_ca: str | None = None,
) -> pd.DataFrame:
    """The runs (of one project, or all), oldest first, as a pandas DataFrame: the columns of the `runs`
    view, with `config` flattened into one `config.KEY` column per key."""
    if project is not None and (not isinstance(project, str) or not project):
        raise ValueError(f"project must be a project name, got {project!r}")
    _pandas()
    return runs_frame(query(runs_sql(project), url, token, tls_ca))


def history(
    run_id: str,
    tags: str | Sequence[str] | None = None,
    rank: int = 0,
    wall_time: bool = False,
    url: str | None = None,
    token: str | None = None,
    tls_ca: str | None = None,
) -> pd.DataFrame:
    """One run's scalars as a DataFrame indexed by `step`, one float column per tag (NaN at a step where
    that tag has no point), for one `rank`. `tags`: a tag, a list of tags, or None for every scalar tag
    of the run. With `wall_time=True`, each tag's column is followed by `TAG.wall_time` (seconds since
    the epoch). Where a tag was logged twice at a step, the last written is kept."""
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"run_id must be a run's id (runstream.runs() lists them), got {run_id!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank must be a whole number >= 0, got {rank!r}")
    names = _tag_list(tags)
    _pandas()
    table = query(history_sql(run_id, names, rank, wall_time), url, token, tls_ca)
    if table.num_rows == 0:
        known = query(f"SELECT count(*) AS n FROM runs WHERE run_id = {sql_literal(run_id)}", url, token, tls_ca)
        if known.column("n")[0].as_py() == 0:
            raise QueryError(f"no run {run_id!r} on the server; runstream.runs() lists the runs")
    return history_frame(table, names, wall_time)
