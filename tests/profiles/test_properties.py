"""Property tests: the validator never raises and always locates its findings, whatever it is fed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpipe_tui.profiles import ValidationReport, validate_text
from dpipe_tui.profiles.positions import PositionIndex
from tests.profiles.conftest import DATA, VALID_MAIN

PATH = Path("/nonexistent/profile.toml")
BASES: list[dict[str, Any]] = [tomlkit.parse(VALID_MAIN).unwrap()] + [
    tomlkit.parse(p.read_text()).unwrap() for p in sorted(DATA.glob("*.toml"))
]
KEYS = [
    "epochs",
    "model",
    "type",
    "dtype",
    "adapter",
    "optimizer",
    "alpha",
    "blocks_to_swap",
    "pipeline_stages",
    "directory",
    "path",
    "eval_datasets",
    "config",
    "monitoring",
    "wandb_api_key",
    "enable_wandb",
    "lr",
    "betas",
    "resolutions",
    "size_buckets",
    "activation_checkpointing",
    "partition_split",
    "dpipe_tui",
]

scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "chroma", "bfloat16", "nf4", "unsloth", "manual", "/path/to/x", "demo", "lora"]),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)


def _assert_located(report: ValidationReport) -> None:
    for f in report.findings:
        assert f.file is not None, f
        assert (f.line or 0) >= 1, f
        assert (f.column or 0) >= 1, f
        assert f.code
        assert f.message


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            _containers(v, out)
    elif isinstance(node, list):
        out.append(node)
        for v in node:
            _containers(v, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(_containers(data, [])))
        op = draw(st.sampled_from(["set", "delete", "rename", "add"]))
        if isinstance(target, dict):
            keys = list(target)
            if op == "delete" and keys:
                del target[draw(st.sampled_from(keys))]
            elif op == "rename" and keys:
                old = draw(st.sampled_from(keys))
                target[draw(st.sampled_from(KEYS)) + draw(st.sampled_from(["", "s", "_x"]))] = target.pop(old)
            elif op == "set" and keys:
                target[draw(st.sampled_from(keys))] = draw(values)
            else:
                target[draw(st.sampled_from(KEYS))] = draw(values)
        elif target:
            i = draw(st.integers(0, len(target) - 1))
            if op == "delete":
                del target[i]
            else:
                target[i] = draw(values)
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans(), st.one_of(st.none(), st.integers(1, 8)))
def test_mutated_configs_never_raise_and_are_located(
    data: dict[str, Any], check_paths: bool, gpus: int | None
) -> None:
    try:
        text = tomlkit.dumps(data)
    except Exception:  # a mutation tomlkit itself cannot serialise (e.g. mixed array types in old TOML)
        return
    _assert_located(validate_text(text, path=PATH, check_paths=check_paths, gpu_count=gpus))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(raw: bytes) -> None:
    text = raw.decode("utf-8", errors="replace")
    _assert_located(validate_text(text, path=PATH))
    PositionIndex(text)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([VALID_MAIN, *(p.read_text() for p in sorted(DATA.glob("*.toml")))]), st.data())
def test_text_edits_never_raise(text: str, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 20))
    insert = data.draw(
        st.sampled_from(["", "[", "]", "=", "'", '"', "{", "}", ",", "\n", "#", ".", "[[a]]\n"])
    )
    mutated_text = text[:pos] + insert + text[pos + cut :]
    _assert_located(validate_text(mutated_text, path=PATH, check_paths=False))
