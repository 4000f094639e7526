"""runstream's SummaryWriter has every public method of tensorboardX's and torch's SummaryWriter (the dev
extra's versions), each with their parameters' names and defaults: a drift test, so a method or keyword
added upstream fails here rather than in a user's training job.

Where the two writers disagree, runstream takes both: `add_onnx_graph(onnx_model_file)` vs
`add_onnx_graph(prototxt)` (both names), `add_image_with_boxes`' `rescale` (torch's position; tensorboardX
passes it through **kwargs), `add_hparams`' `name` (tensorboardX) vs `hparam_domain_discrete`/`run_name`
(torch's positions), `__init__`'s `logdir` vs `log_dir`. Positions are checked up to the first parameter
where the two writers differ.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from runstream.tensorboard import SummaryWriter


def _writers() -> list[tuple[str, type]]:
    writers = []
    try:
        import tensorboardX

        writers.append(("tensorboardX", tensorboardX.SummaryWriter))
    except ImportError:  # pragma: no cover - the dev extra installs it
        pass
    try:
        from torch.utils.tensorboard import SummaryWriter as TorchWriter

        writers.append(("torch", TorchWriter))
    except ImportError:  # pragma: no cover
        pass
    return writers


WRITERS = _writers()


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") or name == "__init__"
    }


def _parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(function).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def _positional(function: Callable[..., Any]) -> list[str]:
    return [p.name for p in _parameters(function) if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def test_reference_writers_are_installed() -> None:
    assert [name for name, _ in WRITERS] == ["tensorboardX", "torch"], "install the dev extra"


@pytest.mark.parametrize(("writer", "cls"), WRITERS, ids=[name for name, _ in WRITERS])
def test_every_public_method_exists(writer: str, cls: type) -> None:
    ours = _public(SummaryWriter)
    missing = sorted(set(_public(cls)) - set(ours))
    assert not missing, f"runstream's SummaryWriter lacks {writer}'s {missing}"


@pytest.mark.parametrize(("writer", "cls"), WRITERS, ids=[name for name, _ in WRITERS])
def test_every_parameter_has_the_same_name_and_default(writer: str, cls: type) -> None:
    ours = _public(SummaryWriter)
    problems = []
    for name, reference in _public(cls).items():
        mine = {p.name: p for p in _parameters(ours[name])}
        for parameter in _parameters(reference):
            own = mine.get(parameter.name)
            if own is None:
                problems.append(f"{name}: no parameter {parameter.name!r}")
            elif parameter.kind is parameter.KEYWORD_ONLY and own.kind is not own.KEYWORD_ONLY:
                problems.append(f"{name}: {parameter.name!r} should be keyword-only")
            elif parameter.default is not parameter.empty and own.default != parameter.default:
                if not (name == "__init__" and parameter.name == "comet_config"):  # a dict default: None here
                    problems.append(f"{name}: {parameter.name}={own.default!r}, {writer} has {parameter.default!r}")
    assert not problems, f"differs from {writer}: " + "; ".join(problems)


def test_positions_agree_where_the_writers_agree() -> None:
    if len(WRITERS) < 2:
        pytest.skip("needs both reference writers")
    (_, first), (_, second) = WRITERS
    ours = _public(SummaryWriter)
    problems = []
    for name in sorted(set(_public(first)) & set(_public(second))):
        a, b = _positional(_public(first)[name]), _positional(_public(second)[name])
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        if _positional(ours[name])[:common] != a[:common]:
            problems.append(f"{name}: {_positional(ours[name])[:common]} != {a[:common]}")
    assert not problems, "; ".join(problems)


def test_no_catch_all_and_no_unsupported_list() -> None:
    import runstream.tensorboard as module

    assert "__getattr__" not in vars(SummaryWriter), "every public method exists explicitly"
    assert not hasattr(module, "UNSUPPORTED")
    with pytest.raises(AttributeError):
        SummaryWriter.add_nothing_such  # type: ignore[attr-defined]  # noqa: B018
