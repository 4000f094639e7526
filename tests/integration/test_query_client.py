"""runstream.query, runstream.runs and runstream.history against real servers: plain, with tokens, and
over TLS (a self-signed certificate made here with openssl)."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import runstream
from support import ServerProcess

TIMEOUT = 30.0
READ = "read-token-0123456789abcdef"
WRITE = "write-token-0123456789abcdef"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    """Two runs of project "nb" (one with 2 ranks) and one of project "other"."""
    server = ServerProcess(tmp_path_factory.mktemp("nb") / "data").start()
    first = runstream.init(
        project="nb", name="first", server=server.address, config={"lr": 0.1, "optim": {"name": "adam"}}
    )
    for step in range(100):
        first.log({"loss": 1.0 / (step + 1), **({"val/acc": step / 100} if step % 10 == 0 else {})}, step=step)
    assert first.finish(timeout=TIMEOUT).complete
    ranks = [
        runstream.init(project="nb", name="second", server=server.address, run_id="job-2", rank=r, world_size=2)
        for r in range(2)
    ]
    for rank, run in enumerate(ranks):
        for step in range(5):
            run.log({"loss": 10.0 * rank + step}, step=step)
    for run in ranks:
        assert run.finish(timeout=TIMEOUT).complete
    other = runstream.init(project="other", name="third", server=server.address, config={"lr": 0.5})
    assert other.finish(timeout=TIMEOUT).complete
    yield server, first.id, ranks[0].id
    server.stop()


def test_runs_of_a_project_with_their_config(logged: tuple[ServerProcess, str, str]) -> None:
    server, first_id, second_id = logged
    frame = runstream.runs(project="nb", url=server.http_url)
    assert frame["run_id"].tolist() == [first_id, second_id]
    assert frame["name"].tolist() == ["first", "second"] and set(frame["status"]) == {"finished"}
    assert frame.loc[0, "config.lr"] == 0.1 and frame.loc[0, "config.optim.name"] == "adam"
    assert frame.loc[1, "world_size"] == 2
    assert len(runstream.runs(url=server.http_url)) == 3
    assert runstream.runs(project="nobody", url=server.http_url).empty


def test_history_by_step_with_nan_and_wall_times(logged: tuple[ServerProcess, str, str]) -> None:
    server, first_id, _ = logged
    frame = runstream.history(first_id, ["loss", "val/acc"], url=server.http_url)
    assert frame.index.name == "step" and frame.index.tolist() == list(range(100))
    assert list(frame.columns) == ["loss", "val/acc"]
    assert frame.loc[3, "loss"] == 0.25 and math.isnan(frame.loc[3, "val/acc"]) and frame.loc[30, "val/acc"] == 0.3
    assert frame["val/acc"].notna().sum() == 10
    timed = runstream.history(first_id, "loss", wall_time=True, url=server.http_url)
    assert list(timed.columns) == ["loss", "loss.wall_time"] and timed["loss.wall_time"].gt(1.5e9).all()
    every = runstream.history(first_id, url=server.http_url)
    assert list(every.columns) == ["loss", "val/acc"]


def test_history_of_one_rank(logged: tuple[ServerProcess, str, str]) -> None:
    server, _, second_id = logged
    assert runstream.history(second_id, "loss", url=server.http_url)["loss"].tolist() == [0, 1, 2, 3, 4]
    assert runstream.history(second_id, "loss", rank=1, url=server.http_url)["loss"].tolist() == [10, 11, 12, 13, 14]


def test_an_unknown_run_is_named(logged: tuple[ServerProcess, str, str]) -> None:
    server, _, _ = logged
    with pytest.raises(runstream.QueryError, match="no run 'nope'"):
        runstream.history("nope", "loss", url=server.http_url)


def test_the_address_from_runstream_url(
    logged: tuple[ServerProcess, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _, _ = logged
    monkeypatch.setenv("RUNSTREAM_URL", server.http_url)
    assert runstream.query("SELECT count(*) AS n FROM runs").column("n")[0].as_py() == 3


def test_tokens_as_for_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read\n{WRITE} write:*\n")
    with ServerProcess(tmp_path / "data", ("--tokens", str(tokens))) as server:
        with pytest.raises(runstream.AuthError, match="scope 'read'"):
            runstream.query("SELECT 1", url=server.http_url)
        with pytest.raises(runstream.AuthError):
            runstream.query("SELECT 1", url=server.http_url, token=WRITE)
        assert runstream.query("SELECT 1 AS x", url=server.http_url, token=READ).num_rows == 1
        monkeypatch.setenv("RUNSTREAM_TOKEN", READ)
        assert runstream.runs(url=server.http_url).empty


def test_tls_as_for_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost"
    names = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    subprocess.run([*command.split(), "-keyout", str(key), "-out", str(cert), "-addext", names], check=True)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{READ} read\n")
    args = ("--tokens", str(tokens), "--tls-cert", str(cert), "--tls-key", str(key))
    with ServerProcess(tmp_path / "data", args) as server:
        assert server.http_url.startswith("https://")
        with pytest.raises(runstream.ServerUnavailableError, match="RUNSTREAM_TLS_CA"):  # not trusted by default
            runstream.query("SELECT 1", url=server.http_url, token=READ)
        answer = runstream.query("SELECT 7 AS x", url=server.http_url, token=READ, tls_ca=str(cert))
        assert answer.column("x")[0].as_py() == 7
        monkeypatch.setenv("RUNSTREAM_TLS_CA", str(cert))
        monkeypatch.setenv("RUNSTREAM_TOKEN", READ)
        address = server.http_url.removeprefix("https://")  # no scheme: TLS because a CA is given
        assert runstream.query("SELECT 8 AS x", url=address).column("x")[0].as_py() == 8
