"""The Dockerfile and docker-compose.yml must agree with the code and with each other.

Nothing here builds an image: the files are parsed, every `runstream ...` command in them is parsed by the
real CLI parser, and the ports, the data directory and the health check are compared across the files.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from runstream_service.cli import build_parser
from runstream_service.settings import split_address

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
README = REPO / "README.md"
PYPROJECT = REPO / "pyproject.toml"

SERVER_EXTRA = "server"
README_INSTALL = "pip install '.[server]'"


# --- parsing -----------------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and backslash continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_arguments(keyword: str) -> list[str]:
    return [arguments for found, arguments in dockerfile_instructions() if found == keyword]


def the_one(keyword: str) -> str:
    found = dockerfile_arguments(keyword)
    assert len(found) == 1, f"expected one {keyword} in the Dockerfile, found {len(found)}"
    return found[0]


def command_argv(command: str | list[str]) -> list[str]:
    """An exec-form (JSON array / YAML list) or shell-form command as argv."""
    if isinstance(command, list):
        return [str(part) for part in command]
    text = command.strip()
    if text.startswith("["):
        parsed = json.loads(text)
        assert isinstance(parsed, list), f"not a JSON array: {text}"
        return [str(part) for part in parsed]
    return shlex.split(text)


def dockerfile_cmd() -> list[str]:
    return command_argv(the_one("CMD"))


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


def compose_service(name: str) -> dict[str, Any]:
    services = load_compose().get("services") or {}
    assert name in services, f"docker-compose.yml has no service {name!r}"
    service = services[name]
    assert isinstance(service, dict)
    return service


def parse_runstream(argv: list[str]) -> argparse.Namespace:
    assert argv and argv[0] == "runstream", f"not a runstream command: {argv}"
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"the CLI rejects {shlex.join(argv)}")


def server_args() -> argparse.Namespace:
    args = parse_runstream(command_argv(compose_service("server")["command"]))
    assert args.command == "serve"
    return args


def port_of(address: str) -> int:
    return split_address(address)[1]


def container_port(published: str | int | dict[str, Any]) -> int:
    """The container side of a compose `ports` entry: "8080", "8080:8080", "127.0.0.1:8080:8080/tcp", or long form."""
    if isinstance(published, dict):
        return int(published["target"])
    return int(str(published).split("/")[0].rsplit(":", 1)[-1])


def health_check_urls() -> dict[str, str]:
    """The URL each health check fetches, keyed by where it is declared."""
    test = compose_service("server")["healthcheck"]["test"]
    declared = {
        "docker-compose.yml": " ".join(command_argv(test)),
        "Dockerfile": the_one("HEALTHCHECK"),
    }
    urls: dict[str, str] = {}
    for where, text in declared.items():
        found = re.findall(r"https?://[^\s'\"]+", text)
        assert len(found) == 1, f"expected one URL in the {where} health check, found {found}"
        urls[where] = found[0]
    return urls


# --- compose structure ------------------------------------------------------------------------------------------


def test_compose_has_server_and_demo() -> None:
    services = load_compose().get("services") or {}
    assert {"server", "demo"} <= set(services)


def test_demo_only_runs_with_its_profile() -> None:
    assert "demo" in compose_service("demo").get("profiles", [])
    assert not compose_service("server").get("profiles"), "the server must start without a profile"


def test_demo_waits_for_a_healthy_server() -> None:
    depends_on = compose_service("demo").get("depends_on") or {}
    assert isinstance(depends_on, dict), "depends_on must be a mapping to carry a condition"
    assert depends_on.get("server", {}).get("condition") == "service_healthy"


# --- every command parses with the real CLI ----------------------------------------------------------------------


@pytest.mark.parametrize("service", ["server", "demo"])
def test_compose_command_parses(service: str) -> None:
    args = parse_runstream(command_argv(compose_service(service)["command"]))
    assert args.command == {"server": "serve", "demo": "demo"}[service]


def test_dockerfile_cmd_parses() -> None:
    assert parse_runstream(dockerfile_cmd()).command == "serve"


def test_compose_server_runs_the_dockerfile_cmd() -> None:
    assert command_argv(compose_service("server")["command"]) == dockerfile_cmd()


def test_server_listens_beyond_loopback_only_with_insecure() -> None:
    # Inside a container, loopback is unreachable from the published ports; without tokens that needs --insecure.
    args = server_args()
    assert split_address(args.grpc)[0] == "0.0.0.0" and split_address(args.http)[0] == "0.0.0.0"
    assert args.insecure and args.tokens is None


# --- ports, data, health ------------------------------------------------------------------------------------------


def test_published_ports_are_the_server_ports() -> None:
    args = server_args()
    published = {container_port(entry) for entry in compose_service("server").get("ports", [])}
    assert published == {port_of(args.grpc), port_of(args.http)}


def test_exposed_ports_are_the_cmd_ports() -> None:
    args = parse_runstream(dockerfile_cmd())
    exposed = {int(port.split("/")[0]) for arguments in dockerfile_arguments("EXPOSE") for port in arguments.split()}
    assert exposed == {port_of(args.grpc), port_of(args.http)}


def test_data_dir_is_the_named_volume() -> None:
    data = server_args().data
    named = set(load_compose().get("volumes") or {})
    mounts = []
    for volume in compose_service("server").get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume.get("source"), volume["target"]))
        else:
            source, target = str(volume).split(":")[:2]
            mounts.append((source, target))
    assert ("runstream-data", data) in mounts
    assert "runstream-data" in named, "the volume must be declared at the top level to be a named volume"


def test_dockerfile_creates_the_data_dir() -> None:
    data = parse_runstream(dockerfile_cmd()).data
    assert any("mkdir" in run and data in shlex.split(run) for run in dockerfile_arguments("RUN"))


def test_demo_streams_into_the_server_service() -> None:
    demo = parse_runstream(command_argv(compose_service("demo")["command"]))
    host, port = split_address(demo.server)
    assert host == "server", "inside the compose network the server is reached by its service name"
    assert port == port_of(server_args().grpc)


@pytest.mark.parametrize("where", ["Dockerfile", "docker-compose.yml"])
def test_health_check_fetches_healthz_on_the_http_port(where: str) -> None:
    url = urlsplit(health_check_urls()[where])
    assert url.path == "/healthz"
    assert url.hostname in ("127.0.0.1", "localhost")
    assert url.port == port_of(server_args().http)


# --- install ------------------------------------------------------------------------------------------------------


def test_dockerfile_installs_the_server_extra_of_the_copied_source() -> None:
    copies = [shlex.split(arguments) for arguments in dockerfile_arguments("COPY")]
    assert [".", "/src"] in copies, "the Dockerfile must copy the repository to /src"
    installs = [shlex.split(run) for run in dockerfile_arguments("RUN") if "pip install" in run]
    wanted = ["pip", "install", "--no-cache-dir", f"/src[{SERVER_EXTRA}]"]
    # The command may follow a RUN flag (a secret's mount) and a shell line that prepares it.
    assert any(words[at : at + len(wanted)] == wanted for words in installs for at in range(len(words))), installs


def test_server_extra_exists() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert SERVER_EXTRA in extras


def test_readme_installs_the_same_extra() -> None:
    if not README.exists():
        pytest.skip("README.md does not exist yet")
    assert README_INSTALL in README.read_text()
