"""docker-compose.yml run for real: the image that `.ci/run` builds, under docker-compose, on this machine.

The compose file used is made from the repository's docker-compose.yml with only what a test needs changed:
host networking (no traffic to the Docker bridge's private addresses) on free loopback ports, the image already
built (so compose never builds), and a mounted token file in place of --insecure, read by the image's
unprivileged user. The services, the named volume, the healthcheck and the demo profile are the user's.

Needs a Docker engine, docker-compose and the image (`.ci/run` installs and builds them; RUNSTREAM_DOCKER_IMAGE
names another image). Without them the test is skipped, unless RUNSTREAM_REQUIRE_DOCKER=1 (as in CI), where
that is a failure.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.error
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
IMAGE = os.environ.get("RUNSTREAM_DOCKER_IMAGE", "runstream:local")
TOKEN_IN_CONTAINER = "/run/runstream/tokens"
WRITE_TOKEN = "compose-writer-0123456789abcdef"
READ_TOKEN = "compose-reader-0123456789abcdef"
TOKENS = f"# test tokens\n{WRITE_TOKEN} write:*\n{READ_TOKEN} read\n"
POINTS = 1_000_000
COMMAND_TIMEOUT = 180.0
HEALTHY_TIMEOUT = 120.0  # the healthcheck's first probe comes after its 10 s interval


# --- the test-only compose file (pure) ----------------------------------------------------------------------------


def _replaced(argv: list[str], old: str, new: list[str]) -> list[str]:
    assert old in argv, f"docker-compose.yml changed: expected {old!r} in {argv}; update this test's rewrite"
    at = argv.index(old)
    return [*argv[:at], *new, *argv[at + 1 :]]


def compose_for_test(user: dict[str, Any], image: str, grpc_port: int, http_port: int, tokens: Path) -> dict[str, Any]:
    """The user's compose document on host networking and the given loopback ports, with a token file."""
    document = copy.deepcopy(user)
    grpc, http = f"127.0.0.1:{grpc_port}", f"127.0.0.1:{http_port}"
    for service in document["services"].values():
        service.pop("build", None)
        service.pop("ports", None)
        service["image"] = image
        service["network_mode"] = "host"
    server = document["services"]["server"]
    command = _replaced(list(server["command"]), "0.0.0.0:50051", [grpc])
    command = _replaced(command, "0.0.0.0:8080", [http])
    server["command"] = _replaced(command, "--insecure", ["--tokens", TOKEN_IN_CONTAINER])
    server["volumes"] = [*server["volumes"], f"{tokens}:{TOKEN_IN_CONTAINER}:ro"]
    health = [part.replace("127.0.0.1:8080/", f"{http}/") for part in server["healthcheck"]["test"]]
    assert health != server["healthcheck"]["test"], "the healthcheck no longer fetches 127.0.0.1:8080"
    server["healthcheck"]["test"] = health
    demo = document["services"]["demo"]
    demo["command"] = _replaced(list(demo["command"]), "server:50051", [grpc])
    demo["environment"] = {"RUNSTREAM_TOKEN": WRITE_TOKEN}
    return document


def load_user_compose() -> dict[str, Any]:
    document = yaml.safe_load(USER_COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def test_compose_for_test_keeps_the_users_services_volume_healthcheck_and_profile(tmp_path: Path) -> None:
    user = load_user_compose()
    made = compose_for_test(user, "runstream:test", 41001, 41002, tmp_path / "tokens")
    assert set(made["services"]) == set(user["services"]) and made["volumes"] == user["volumes"]
    server, demo = made["services"]["server"], made["services"]["demo"]
    assert "runstream-data:/data" in server["volumes"]
    assert {k: v for k, v in server["healthcheck"].items() if k != "test"} == {
        k: v for k, v in user["services"]["server"]["healthcheck"].items() if k != "test"
    }
    assert "http://127.0.0.1:41002/healthz" in " ".join(server["healthcheck"]["test"])
    assert demo["profiles"] == ["demo"] and demo["depends_on"] == user["services"]["demo"]["depends_on"]
    assert "127.0.0.1:41001" in demo["command"] and "--tokens" in server["command"]
    assert all("ports" not in s and "build" not in s and s["network_mode"] == "host" for s in made["services"].values())


# --- docker -------------------------------------------------------------------------------------------------------


def _docker_missing() -> str | None:
    if shutil.which("docker") is None or shutil.which("docker-compose") is None:
        return "docker or docker-compose is not installed (.ci/run installs docker.io and docker-compose)"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return "no Docker engine answers `docker info` (.ci/run starts dockerd)"
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=60).returncode != 0:
        return f"the image {IMAGE} is not built (.ci/run builds it)"
    return None


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Compose:
    """One docker-compose project made from the test-only file; `down -v` always ends it."""

    file: Path
    project: str
    grpc: str
    http: str

    def __call__(self, *args: str, profile: bool = False) -> str:
        """docker-compose ARGS on this project; `profile` also enables the demo profile."""
        profiles = ["--profile", "demo"] if profile else []
        return _run(["docker-compose", "-p", self.project, "-f", str(self.file), *profiles, *args])

    def up(self, *services: str) -> None:
        self("up", "-d", "--no-build", *services, profile=bool(services))

    def wait_healthy(self) -> None:
        container = self("ps", "-q", "server").strip()
        deadline = time.monotonic() + HEALTHY_TIMEOUT
        status = ""
        while time.monotonic() < deadline:
            status = _run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container]).strip()
            if status == "healthy":
                return
            time.sleep(1)
        pytest.fail(f"the server is {status!r}, not healthy, after {HEALTHY_TIMEOUT:.0f} s:\n{self('logs', 'server')}")

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
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    tokens.chmod(0o644)  # the container's user (uid 10001) reads it through the bind mount
    grpc_port, http_port = free_port(), free_port()
    while http_port == grpc_port:
        http_port = free_port()
    document = compose_for_test(load_user_compose(), IMAGE, grpc_port, http_port, tokens)
    file = tmp_path / "docker-compose.test.yml"
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    project = Compose(file, f"runstreamtest{uuid.uuid4().hex[:8]}", f"127.0.0.1:{grpc_port}", f"127.0.0.1:{http_port}")
    try:
        yield project
    finally:
        project("down", "-v", "--remove-orphans", "--timeout", "20", profile=True)
    assert not project.leftovers(), f"docker-compose down -v left {project.leftovers()}"


# --- the test -----------------------------------------------------------------------------------------------------


def _get(compose: Compose, path: str) -> Any:
    request = urllib.request.Request(f"http://{compose.http}{path}", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def _points(compose: Compose, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    answer = _get(compose, f"/api/points?run={run_id}&tag=loss&format=json")
    assert answer["count"] == POINTS
    return np.asarray(answer["step"], dtype=np.int64), np.asarray(answer["value"], dtype=np.float64)


def _eventually(check: Callable[[], bool], timeout: float, what: str, compose: Compose) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s:\n{compose('logs', profile=True)}")
        time.sleep(1)


@pytest.mark.slow
def test_compose_serves_keeps_data_across_down_up_and_runs_the_demo(compose: Compose) -> None:
    compose.up()
    compose.wait_healthy()
    assert compose("exec", "-T", "server", "id", "-u").strip() == "10001", "the server must not run as root"

    steps = np.arange(POINTS, dtype=np.int64)
    values = steps * 0.25  # exact in float64, so the read-back compares exactly
    run = runstream.init(project="compose", name="million", server=compose.grpc, token=WRITE_TOKEN, require_server=True)
    for step, value in zip(steps.tolist(), values.tolist()):
        run.log({"loss": value}, step=step)
    report = run.finish(timeout=300)
    assert report.complete, report

    read_steps, read_values = _points(compose, run.id)
    np.testing.assert_array_equal(read_steps, steps)
    np.testing.assert_array_equal(read_values, values)

    compose("down", "--timeout", "20")  # without -v: the named volume stays
    compose.up()
    compose.wait_healthy()
    read_steps, read_values = _points(compose, run.id)
    np.testing.assert_array_equal(read_steps, steps)
    np.testing.assert_array_equal(read_values, values)

    compose.up("demo")

    def demo_runs_arrived() -> bool:
        runs = _get(compose, "/api/runs?project=demo")["runs"]
        return len(runs) == 4 and all((r["last_step"] or 0) > 0 for r in runs)

    _eventually(demo_runs_arrived, 180, "the demo's 4 runs did not arrive", compose)
