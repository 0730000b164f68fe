"""Settings: merging camelCase/snake_case options, warnings for bad input, pyproject, precedence."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from speedsmith.settings import DEFAULTS, Settings, from_pyproject, merge, to_wire


def only_changes(settings: Settings) -> dict[str, Any]:
    """The fields that differ from the defaults (snake_case)."""
    return {
        field.name: getattr(settings, field.name)
        for field in dataclasses.fields(settings)
        if getattr(settings, field.name) != getattr(DEFAULTS, field.name)
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"minSpeedup": 1.5}, {"min_speedup": 1.5}, id="camel-float"),
        pytest.param({"min_speedup": 1.5}, {"min_speedup": 1.5}, id="snake-float"),
        pytest.param({"minSpeedup": 2}, {"min_speedup": 2.0}, id="int-for-float-is-widened"),
        pytest.param({"nGpuLayers": -1}, {"n_gpu_layers": -1}, id="camel-multi-word"),
        pytest.param({"n_gpu_layers": 12}, {"n_gpu_layers": 12}, id="snake-multi-word"),
        pytest.param({"budget": "max"}, {"budget": "max"}, id="budget-preset"),
        pytest.param({"budget": 6}, {"budget": 6}, id="budget-number"),
        pytest.param({"budget": "12"}, {"budget": 12}, id="budget-digit-string"),
        pytest.param({"seed": 7, "temperature": 0.2}, {"seed": 7, "temperature": 0.2}, id="two"),
        pytest.param({"seed": None}, {"seed": None}, id="optional-null"),
        pytest.param({"modelPath": "/m.gguf"}, {"model_path": "/m.gguf"}, id="optional-str"),
        pytest.param(
            {"replayFile": "r.json"}, {"replay_file": "r.json"}, id="optional-default-none"
        ),
        pytest.param({"backend": "replay"}, {"backend": "replay"}, id="backend"),
        pytest.param(
            {"candidateTimeoutSeconds": 3, "float_rel_tol": 1e-6},
            {"candidate_timeout_seconds": 3.0, "float_rel_tol": 1e-6},
            id="mixed-styles-in-one-object",
        ),
    ],
)
def test_merge_accepts_camel_and_snake_keys(options: dict[str, Any], expected: dict[str, Any]):
    merged, warnings = merge(DEFAULTS, options, origin="test")
    assert warnings == []
    for name, value in expected.items():
        actual = getattr(merged, name)
        assert actual == value and type(actual) is type(value), name


def test_merge_result_types_follow_the_fields():
    merged, _ = merge(DEFAULTS, {"minSpeedup": 2, "candidateTimeoutSeconds": 3}, origin="t")
    assert type(merged.min_speedup) is float
    assert type(merged.candidate_timeout_seconds) is float


@pytest.mark.parametrize(
    ("options", "field", "fragment"),
    [
        pytest.param({"turbo": True}, None, "unknown setting 'turbo'", id="unknown-camel"),
        pytest.param({"n_gpu": 3}, None, "unknown setting 'n_gpu'", id="unknown-snake"),
        pytest.param({"budget": "huge"}, "budget", "'budget'='huge'", id="budget-word"),
        pytest.param({"budget": 0}, "budget", "'budget'=0", id="budget-zero"),
        pytest.param({"budget": -3}, "budget", "'budget'=-3", id="budget-negative"),
        pytest.param({"budget": True}, "budget", "'budget'=True", id="budget-bool"),
        pytest.param({"budget": 2.5}, "budget", "'budget'=2.5", id="budget-float"),
        pytest.param({"minSpeedup": 0.5}, "min_speedup", "at least 1.0", id="min-speedup-low"),
        pytest.param({"minSpeedup": "fast"}, "min_speedup", "expected a number", id="ms-str"),
        pytest.param({"minSpeedup": True}, "min_speedup", "expected a number", id="ms-bool"),
        pytest.param({"nGpuLayers": "x"}, "n_gpu_layers", "expected an integer", id="ngl-str"),
        pytest.param({"nGpuLayers": 1.5}, "n_gpu_layers", "expected an integer", id="ngl-float"),
        pytest.param({"seed": True}, "seed", "expected an integer", id="seed-bool"),
        pytest.param({"seed": "42"}, "seed", "expected an integer", id="seed-str"),
        pytest.param({"nCtx": None}, "n_ctx", "must not be null", id="required-null"),
        pytest.param({"backend": "vllm"}, "backend", "expected one of", id="backend-unknown"),
        pytest.param({"modelPath": 3}, "model_path", "expected a string", id="path-int"),
        pytest.param({"temperature": "hot"}, "temperature", "expected a number", id="temp-str"),
    ],
)
def test_merge_warns_and_keeps_the_default(
    options: dict[str, Any], field: str | None, fragment: str
):
    merged, warnings = merge(DEFAULTS, options, origin="workspace")
    assert merged == DEFAULTS
    assert len(warnings) == 1
    assert warnings[0].startswith("workspace: ")
    assert fragment in warnings[0]


def test_merge_keeps_valid_keys_next_to_invalid_ones():
    merged, warnings = merge(
        DEFAULTS, {"budget": "huge", "seed": 3, "bogus": 1, "minSpeedup": 0.5}, origin="o"
    )
    assert only_changes(merged) == {"seed": 3}
    assert len(warnings) == 3


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(None, id="none"),
        pytest.param({}, id="empty"),
    ],
)
def test_merge_nothing(options: Any):
    assert merge(DEFAULTS, options, origin="o") == (DEFAULTS, [])


def test_merge_not_an_object_warns():
    merged, warnings = merge(DEFAULTS, ["budget"], origin="init")  # type: ignore[arg-type]
    assert merged == DEFAULTS
    assert warnings == ["init: expected an object of settings, ignored"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param({"minSpeedup": math.nan}, "min_speedup", id="min-speedup-nan"),
        pytest.param({"candidateTimeoutSeconds": -1}, "candidate_timeout_seconds", id="timeout<0"),
        pytest.param({"candidateMemoryMb": 0}, "candidate_memory_mb", id="memory-zero"),
        pytest.param({"timingMaxRounds": 0}, "timing_max_rounds", id="rounds-zero"),
        pytest.param({"maxRecordedCalls": -5}, "max_recorded_calls", id="calls-negative"),
    ],
)
def test_merge_rejects_out_of_range_numbers(options: dict[str, Any], field: str):
    merged, warnings = merge(DEFAULTS, options, origin="o")
    assert getattr(merged, field) == getattr(DEFAULTS, field)
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '[project]\nname = "x"\n\n[tool.speedsmith]\nbudget = "standard"\nminSpeedup = 1.5\n',
            {"budget": "standard", "minSpeedup": 1.5},
            id="table",
        ),
        pytest.param(
            "[tool.speedsmith]\nn_gpu_layers = -1\nseed = 3\n",
            {"n_gpu_layers": -1, "seed": 3},
            id="snake-keys",
        ),
        pytest.param("[tool.ruff]\nline-length = 100\n", {}, id="no-table"),
        pytest.param("", {}, id="empty-file"),
        pytest.param("[tool.speedsmith\nbudget = ", {}, id="broken-toml"),
        pytest.param('[tool]\nspeedsmith = "fast"\n', {}, id="table-not-a-table"),
    ],
)
def test_from_pyproject(tmp_path: Path, text: str, expected: dict[str, Any]):
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    assert from_pyproject(tmp_path) == expected


def test_from_pyproject_missing_file(tmp_path: Path):
    assert from_pyproject(tmp_path) == {}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'tool = "not a table"\n', id="tool-is-a-string"),
        pytest.param(b'[tool.speedsmith]\nbudget = "caf\xe9"\n', id="not-utf8"),
    ],
)
def test_from_pyproject_malformed_returns_empty(tmp_path: Path, content: bytes):
    (tmp_path / "pyproject.toml").write_bytes(content)
    assert from_pyproject(tmp_path) == {}


def layered(*layers: tuple[str, dict[str, Any]]) -> tuple[Settings, list[str]]:
    """Apply layers lowest first, as the server does: init options, workspace, pyproject."""
    settings, warnings = DEFAULTS, []
    for origin, options in layers:
        settings, more = merge(settings, options, origin=origin)
        warnings += more
    return settings, warnings


@pytest.mark.parametrize(
    ("init", "workspace", "pyproject", "expected"),
    [
        pytest.param(
            {"budget": "max"}, {"budget": "standard"}, {"budget": 3}, {"budget": 3}, id="last-wins"
        ),
        pytest.param(
            {"budget": "max"}, {"budget": "standard"}, {}, {"budget": "standard"}, id="workspace"
        ),
        pytest.param({"budget": "max"}, {}, {}, {"budget": "max"}, id="init-only"),
        pytest.param(
            {"seed": 1, "minSpeedup": 1.2},
            {"min_speedup": 1.3},
            {"temperature": 0.1},
            {"seed": 1, "min_speedup": 1.3, "temperature": 0.1},
            id="layers-combine",
        ),
        pytest.param(
            {"minSpeedup": 1.4},
            {"minSpeedup": 0.5},
            {},
            {"min_speedup": 1.4},
            id="invalid-keeps-lower-layer",
        ),
        pytest.param(
            {"budget": 5},
            {"budget": "standard"},
            {"budget": "huge"},
            {"budget": "standard"},
            id="invalid-top-keeps-middle",
        ),
        pytest.param(
            {"nGpuLayers": 10},
            {"n_gpu_layers": 20},
            {"nGpuLayers": 30},
            {"n_gpu_layers": 30},
            id="styles-override-each-other",
        ),
    ],
)
def test_precedence(
    init: dict[str, Any], workspace: dict[str, Any], pyproject: dict[str, Any], expected: dict
):
    settings, _ = layered(("init", init), ("workspace", workspace), ("pyproject", pyproject))
    for name, value in expected.items():
        assert getattr(settings, name) == value, name


def test_precedence_with_pyproject_file(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.speedsmith]\nbudget = "max"\nturbo = 1\n', encoding="utf-8"
    )
    settings, warnings = layered(
        ("init", {"budget": 2, "seed": 9}),
        ("workspace", {"budget": "standard"}),
        ("pyproject", from_pyproject(tmp_path)),
    )
    assert settings.budget == "max"
    assert settings.seed == 9
    assert warnings == ["pyproject: unknown setting 'turbo' ignored"]


def test_to_wire_round_trips():
    custom = Settings(budget=9, min_speedup=1.3, n_gpu_layers=-1, seed=4)
    wire = to_wire(custom)
    assert "minSpeedup" in wire and "nGpuLayers" in wire
    merged, warnings = merge(DEFAULTS, wire, origin="wire")
    assert warnings == []
    assert merged == custom
