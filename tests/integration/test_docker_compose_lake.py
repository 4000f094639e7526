"""docker-compose.yml's lake profile run for real: PostgreSQL, the S3 server and two lake servers, from the images
that `.ci/run` builds, under docker-compose, on this machine.

The compose file used is made from the repository's docker-compose.yml with only what a test needs changed: the
lake profile's services alone, on host networking (no traffic to the Docker bridge's private addresses), so each
listens on a free loopback port and finds the others there instead of by service name; the images already built
(so compose never builds); a password of the test's own. The commands, environment, named volumes, healthchecks
and depends_on conditions are the user's.

The test writes one run through each server with the SDK and reads the lake the way a notebook does: DuckDB 1.5.5
attached read-only, here run inside lake-a's container (its image has DuckDB 1.5.5, the extensions, and the
catalog's password and S3 keys in its environment). Then each server's page API (/api/runs, /api/scalars), which
reads the whole lake, must show both runs with every point once; and each run's points come back exactly from the
server that took it.

Needs a Docker engine, docker-compose and the three images (`.ci/run` installs and builds them;
RUNSTREAM_DOCKER_LAKE_IMAGE, RUNSTREAM_DOCKER_POSTGRES_IMAGE and RUNSTREAM_DOCKER_S3_IMAGE name others). Without
them the test is skipped, unless RUNSTREAM_REQUIRE_DOCKER=1 (as in CI), where that is a failure.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml  # type: ignore[import-untyped]

import runstream
from support import free_port

REPO = Path(__file__).resolve().parents[2]
USER_COMPOSE = REPO / "docker-compose.yml"
IMAGES = {
    "lake": os.environ.get("RUNSTREAM_DOCKER_LAKE_IMAGE", "runstream-lake:local"),
    "postgres": os.environ.get("RUNSTREAM_DOCKER_POSTGRES_IMAGE", "runstream-postgres:local"),
    "s3": os.environ.get("RUNSTREAM_DOCKER_S3_IMAGE", "runstream-s3:local"),
}
LAKE_SERVICES = ("postgres", "s3", "lake-a", "lake-b")
SERVERS = ("lake-a", "lake-b")
PASSWORD = "compose-lake-0123456789abcdef"
STEPS = 20_000
COMMAND_TIMEOUT = 180.0
HEALTHY_TIMEOUT = 180.0  # postgres and s3 healthy first, then the servers' first probe after their interval


# --- the test-only compose file (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """The loopback ports of the test's services: the catalog, the S3 server, and each server's gRPC and HTTP."""

    postgres: int
    s3: int
    grpc: tuple[int, int]
    http: tuple[int, int]


def _replaced(argv: list[str], old: str, new: list[str]) -> list[str]:
    assert old in argv, f"docker-compose.yml changed: expected {old!r} in {argv}; update this test's rewrite"
    at = argv.index(old)
    return [*argv[:at], *new, *argv[at + 1 :]]


def _after(argv: list[str], flag: str) -> str:
    assert flag in argv, f"docker-compose.yml changed: expected {flag} in {argv}; update this test's rewrite"
    return argv[argv.index(flag) + 1]


def compose_for_test(user: dict[str, Any], images: dict[str, str], ports: Ports) -> dict[str, Any]:
    """The user's lake profile on host networking and the given loopback ports, with the test's password."""
    document = {"services": {name: copy.deepcopy(user["services"][name]) for name in LAKE_SERVICES}}
    document["volumes"] = {name: copy.deepcopy(user["volumes"][name]) for name in _named_volumes(document)}
    for name, service in document["services"].items():
        assert service["profiles"] == ["lake"], f"{name} is no longer in the lake profile"
        service.pop("build", None)
        service.pop("ports", None)
        service["image"] = images["lake" if name in SERVERS else name]
        service["network_mode"] = "host"
    postgres = document["services"]["postgres"]
    postgres["command"] = _replaced(list(postgres["command"]), "listen_addresses=*", ["listen_addresses=127.0.0.1"])
    postgres["environment"] = {**postgres["environment"], "POSTGRES_PASSWORD": PASSWORD, "PGPORT": str(ports.postgres)}
    s3 = document["services"]["s3"]
    s3["environment"] = {**s3["environment"], "S3_HOST": "127.0.0.1", "S3_PORT": str(ports.s3)}
    for server, grpc, http in zip(SERVERS, ports.grpc, ports.http):
        service = document["services"][server]
        command = _replaced(list(service["command"]), "0.0.0.0:50051", [f"127.0.0.1:{grpc}"])
        command = _replaced(command, "0.0.0.0:8080", [f"127.0.0.1:{http}"])
        catalog = _after(command, "--lake")
        assert "host=postgres" in catalog, f"the catalog {catalog!r} no longer names host=postgres"
        command = _replaced(
            command, catalog, [catalog.replace("host=postgres", f"host=127.0.0.1 port={ports.postgres}")]
        )
        service["command"] = _replaced(command, "s3:5000", [f"127.0.0.1:{ports.s3}"])
        service["environment"] = {**service["environment"], "PGPASSWORD": PASSWORD}
        health = [part.replace("127.0.0.1:8080/", f"127.0.0.1:{http}/") for part in service["healthcheck"]["test"]]
        assert health != service["healthcheck"]["test"], "the healthcheck no longer fetches 127.0.0.1:8080"
        service["healthcheck"] = {**service["healthcheck"], "test": health}
    return document


def _named_volumes(document: dict[str, Any]) -> list[str]:
    mounts = [mount for service in document["services"].values() for mount in service.get("volumes", [])]
    return [mount.split(":")[0] for mount in mounts if not mount.startswith(("/", "."))]


def load_user_compose() -> dict[str, Any]:
    document = yaml.safe_load(USER_COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


PORTS = Ports(postgres=41001, s3=41002, grpc=(41003, 41004), http=(41005, 41006))


def test_compose_for_test_keeps_the_lake_profiles_services_volumes_healthchecks_and_dependencies() -> None:
    user = load_user_compose()
    made = compose_for_test(user, {"lake": "l:t", "postgres": "p:t", "s3": "s:t"}, PORTS)
    assert set(made["services"]) == set(LAKE_SERVICES)
    assert set(made["volumes"]) == {"runstream-lake-catalog", "runstream-lake-a", "runstream-lake-b"}
    for name, service in made["services"].items():
        mine = user["services"][name]
        assert "ports" not in service and "build" not in service and service["network_mode"] == "host"
        assert service.get("volumes") == mine.get("volumes") and service.get("depends_on") == mine.get("depends_on")
        assert {k: v for k, v in service.get("healthcheck", {}).items() if k != "test"} == {
            k: v for k, v in mine.get("healthcheck", {}).items() if k != "test"
        }
    a, b = made["services"]["lake-a"], made["services"]["lake-b"]
    assert a["image"] == b["image"] == "l:t" and made["services"]["postgres"]["image"] == "p:t"
    assert a["depends_on"] == {"postgres": {"condition": "service_healthy"}, "s3": {"condition": "service_healthy"}}
    assert "127.0.0.1:41003" in a["command"] and "127.0.0.1:41006" in b["command"]
    assert "host=127.0.0.1 port=41001 dbname=runstream_lake user=runstream" in a["command"]
    assert "127.0.0.1:41002" in b["command"] and "s3://runstream-lake/runs" in b["command"]
    assert "http://127.0.0.1:41005/healthz" in " ".join(a["healthcheck"]["test"])
    assert a["environment"]["PGPASSWORD"] == made["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert made["services"]["s3"]["environment"]["S3_PORT"] == "41002"
    assert made["services"]["postgres"]["environment"]["PGPORT"] == "41001"


def test_the_users_lake_servers_differ_only_in_ports_and_volume() -> None:
    services = load_user_compose()["services"]
    a, b = (dict(services[name]) for name in SERVERS)
    assert a.pop("ports") != b.pop("ports") and a.pop("volumes") != b.pop("volumes")
    assert a == b
    assert services["server"].get("profiles") is None and services["demo"]["profiles"] == ["demo"]


# --- docker -------------------------------------------------------------------------------------------------------


def _docker_missing() -> str | None:
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        return "docker or docker-compose is not installed (.ci/run installs docker.io and docker-compose)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return "no Docker engine answers `docker info` (.ci/run starts dockerd)"
    for image in IMAGES.values():
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60).returncode != 0:
            return f"the image {image} is not built (.ci/run builds it)"
    return None


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


@dataclass
class Compose:
    """One docker-compose project made from the test-only file; `down -v` always ends it."""

    file: Path
    project: str
    ports: Ports

    def __call__(self, *args: str) -> str:
        return _run(["docker-compose", "-p", self.project, "-f", str(self.file), "--profile", "lake", *args])

    def wait_healthy(self, service: str) -> None:
        container = self("ps", "-q", service).strip()
        deadline = time.monotonic() + HEALTHY_TIMEOUT
        status = ""
        while time.monotonic() < deadline:
            status = _run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container]).strip()
            if status == "healthy":
                return
            time.sleep(1)
        pytest.fail(f"{service} is {status!r}, not healthy, after {HEALTHY_TIMEOUT:.0f} s:\n{self('logs')}")

    def leftovers(self) -> str:
        label = f"label=com.docker.compose.project={self.project}"
        containers = _run(["docker", "ps", "-a", "-q", "--filter", label]).split()
        volumes = _run(["docker", "volume", "ls", "-q", "--filter", label]).split()
        return " ".join(containers + volumes)


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[Compose]:
    missing = _docker_missing()
    if missing:
        if os.environ.get("RUNSTREAM_REQUIRE_DOCKER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    pg, s3, grpc_a, grpc_b, http_a, http_b = _free_ports(6)
    ports = Ports(postgres=pg, s3=s3, grpc=(grpc_a, grpc_b), http=(http_a, http_b))
    file = tmp_path / "docker-compose.lake.test.yml"
    file.write_text(yaml.safe_dump(compose_for_test(load_user_compose(), IMAGES, ports), sort_keys=False))
    project = Compose(file, f"runstreamlake{uuid.uuid4().hex[:8]}", ports)
    try:
        yield project
    finally:
        project("down", "-v", "--remove-orphans", "--timeout", "20")
    assert not project.leftovers(), f"docker-compose down -v left {project.leftovers()}"


# --- the test -----------------------------------------------------------------------------------------------------

# What a notebook runs (README: Scale-out on DuckLake), with the lake's place taken from the server's own command.
READ_LAKE = """
import json, sys, duckdb
from runstream_service.store.lake import LakeConfig, attach
argv = sys.argv[1:]
config = LakeConfig(argv[argv.index("--lake") + 1], argv[argv.index("--data-path") + 1],
                    s3_endpoint=argv[argv.index("--lake-s3-endpoint") + 1])
con = duckdb.connect()
attach(con, config, read_only=True)
points = con.execute("SELECT run_id, tag, count(*), count(DISTINCT step), min(step), max(step), sum(value) "
                     "FROM lake.scalars GROUP BY ALL ORDER BY ALL").fetchall()
runs = con.execute("SELECT run_id, project, name, status FROM lake.runs ORDER BY run_id").fetchall()
files = con.execute("SELECT count(*) FROM glob(?)", [config.data_path + "/**/*.parquet"]).fetchone()[0]
print(json.dumps({"points": points, "runs": runs, "parquet_files": files}))
"""


def _read_lake(compose: Compose) -> dict[str, Any]:
    command = yaml.safe_load(compose.file.read_text())["services"]["lake-a"]["command"]
    answer = compose("exec", "-T", "lake-a", "python", "-c", READ_LAKE, *command)
    result = json.loads(answer.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def _eventually(check: Callable[[], bool], timeout: float, what: str, compose: Compose) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s:\n{compose('logs')}")
        time.sleep(1)


def _write(name: str, server: str, offset: float) -> str:
    run = runstream.init(project="lake-compose", name=name, server=server, require_server=True)
    for step in range(STEPS):
        run.log({"loss": step * 0.25 + offset, "lr": offset}, step=step)
    report = run.finish(timeout=120)
    assert report.complete and report.unsent_points == 0, report
    return run.id


def _get(http: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}{path}", timeout=60) as answer:
        return json.loads(answer.read())


def _server_points(http: int, run_id: str) -> np.ndarray:
    answer = _get(http, f"/api/points?run={run_id}&tag=loss&format=json")
    assert answer["count"] == STEPS
    return np.asarray(answer["value"], dtype=np.float64)


@pytest.mark.slow
def test_two_lake_servers_write_each_run_once_into_one_lake(compose: Compose) -> None:
    compose("up", "-d", "--no-build", *SERVERS)
    for service in LAKE_SERVICES:
        compose.wait_healthy(service)
    for service in LAKE_SERVICES:
        assert compose("exec", "-T", service, "id", "-u").strip() != "0", f"{service} must not run as root"

    grpc_a, grpc_b = (f"127.0.0.1:{port}" for port in compose.ports.grpc)
    run_a = _write("through-a", grpc_a, 0.0)
    run_b = _write("through-b", f"{grpc_b},{grpc_a}", 1000.0)  # B first, A if B is down (the SDK's failover)

    expected_loss = {run_a: STEPS * (STEPS - 1) / 8, run_b: STEPS * (STEPS - 1) / 8 + 1000.0 * STEPS}

    def both_runs_moved() -> bool:
        lake = _read_lake(compose)
        moved = {row[0] for row in lake["points"] if row[1] == "loss" and row[2] >= STEPS}
        finished = {row[0] for row in lake["runs"] if row[3] == "finished"}
        return moved >= {run_a, run_b} and finished >= {run_a, run_b}

    _eventually(both_runs_moved, 120, "both runs' points and finish did not reach the lake", compose)
    lake = _read_lake(compose)
    points = {(run_id, tag): rest for run_id, tag, *rest in lake["points"]}
    for run_id in (run_a, run_b):
        for tag in ("loss", "lr"):
            count, distinct, first, last, _ = points[(run_id, tag)]
            assert (count, distinct, first, last) == (STEPS, STEPS, 0, STEPS - 1), (run_id, tag, points)
        assert points[(run_id, "loss")][4] == expected_loss[run_id]  # exact: quarters in float64
    runs = {run_id: rest for run_id, *rest in lake["runs"]}
    assert runs == {run_a: ["lake-compose", "through-a", "finished"], run_b: ["lake-compose", "through-b", "finished"]}
    assert lake["parquet_files"] > 0, "the lake's data files are not on the S3 server"

    # Each server's page reads the whole lake: both runs, each point once (its chart's series counts them).
    for http in compose.ports.http:
        listed = {run["run_id"]: run["last_step"] for run in _get(http, "/api/runs?project=lake-compose")["runs"]}
        assert listed == {run_a: STEPS - 1, run_b: STEPS - 1}, (http, listed)
        series = _get(http, f"/api/scalars?runs={run_a},{run_b}&tag=loss")["series"]
        assert {(s["run_id"], s["count"]) for s in series} == {(run_a, STEPS), (run_b, STEPS)}, (http, series)

    # Each server also serves the run it took, from its own file (/api/points reads the server's file).
    steps = np.arange(STEPS, dtype=np.float64)
    np.testing.assert_array_equal(_server_points(compose.ports.http[0], run_a), steps * 0.25)
    np.testing.assert_array_equal(_server_points(compose.ports.http[1], run_b), steps * 0.25 + 1000.0)
