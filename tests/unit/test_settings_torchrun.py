"""The run id a torchrun job's ranks share, including torchrun's default --rdzv-id of "none"."""

from __future__ import annotations

from collections.abc import Callable

from runstream._settings import resolve, torchrun_run_id


def parent(identity: str | None) -> Callable[[], str | None]:
    return lambda: identity


def test_an_explicit_rendezvous_id_is_the_run_id() -> None:
    env = {"TORCHELASTIC_RUN_ID": "job-42", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}
    assert torchrun_run_id(env, parent("host:1:2")) == "job-42"


def test_the_default_none_is_named_by_the_agent_on_one_node() -> None:
    env = {"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "4"}
    first = torchrun_run_id(env, parent("host:100:555"))
    assert first.startswith("torchrun-") and first != "none"
    assert torchrun_run_id(env, parent("host:100:555")) == first  # the other ranks of the job
    assert torchrun_run_id(env, parent("host:100:999")) != first  # the next job, even with the same pid


def test_the_default_none_across_nodes_is_no_shared_id() -> None:
    env = {"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8"}
    assert torchrun_run_id(env, parent("host:100:555")) == ""
    assert torchrun_run_id({"TORCHELASTIC_RUN_ID": "none"}, parent(None)) == ""


def test_runstream_run_id_wins_over_torchrun() -> None:
    env = {"RUNSTREAM_RUN_ID": "mine", "TORCHELASTIC_RUN_ID": "none"}
    assert resolve({}, env).run_id == "mine"
    assert resolve({}, {"TORCHELASTIC_RUN_ID": "none"}).run_id not in ("none",)
