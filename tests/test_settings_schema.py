"""The settings schema is the one source: validation, the README table, the VS Code settings and the
budget presets all agree with it.

Each field of ``speedsmith.settings.Settings`` declares its type, default, bounds and description
(``setting(...)``). These tests fail when package.json or the README table is out of date (run
``PYTHONPATH=server .venv/bin/python editors/vscode/scripts/sync_settings.py``), or when what
``merge`` accepts differs from what the contributed JSON schema allows.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from speedsmith.search import budget
from speedsmith.settings import (
    DEFAULTS,
    PRESETS,
    SCHEMA,
    Field,
    Settings,
    camel,
    markdown_table,
    merge,
)

REPO = Path(__file__).resolve().parents[1]
SYNC = REPO / "editors" / "vscode" / "scripts" / "sync_settings.py"
PACKAGE_JSON = REPO / "editors" / "vscode" / "package.json"
FIX = "run PYTHONPATH=server .venv/bin/python editors/vscode/scripts/sync_settings.py"
FIELDS = [pytest.param(field, id=name) for name, field in SCHEMA.items()]


def sync_module() -> Any:
    spec = importlib.util.spec_from_file_location("sync_settings", SYNC)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def contributed(name: str) -> dict[str, Any]:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    return package["contributes"]["configuration"]["properties"][f"speedsmith.{camel(name)}"]


def test_every_field_is_declared() -> None:
    assert list(SCHEMA) == [f.name for f in dataclasses.fields(Settings)]


def test_readme_table_is_generated_from_the_schema() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")

    assert sync_module().readme_table(readme) == markdown_table(), f"README out of date: {FIX}"


def test_package_json_is_generated_from_the_schema() -> None:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))

    assert package["contributes"]["configuration"]["properties"] == sync_module().properties(), (
        f"package.json out of date: {FIX}"
    )


@pytest.mark.parametrize("field", FIELDS)
def test_description_is_one_line(field: Field) -> None:
    assert field.spec.description.strip()
    assert "\n" not in field.spec.description


def json_allows(schema: dict[str, Any], value: Any) -> bool:
    """A small JSON Schema check: the keywords the generator writes."""
    if "anyOf" in schema:
        return any(json_allows(option, value) for option in schema["anyOf"])
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    checks = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
    }
    if not any(checks[kind] for kind in kinds):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return False
    return True


def probes(field: Field) -> list[Any]:
    """Values around the field's bounds and choices, of every JSON type."""
    values: list[Any] = [None, True, "", "not-a-choice", *field.spec.choices]
    for base in (field.spec.minimum, 0, 1):
        if base is not None:
            values += [base - 1, base - 0.5, base, base + 0.5, base + 1]
    values += [-1, 2, 10, 1000, 0.25]
    return values


@pytest.mark.parametrize("field", FIELDS)
def test_validation_agrees_with_the_contributed_schema(field: Field) -> None:
    schema = contributed(field.name)
    disagree = []
    for value in probes(field):
        _, warnings = merge(DEFAULTS, {camel(field.name): value}, origin="test")
        accepted = not warnings
        if accepted != json_allows(schema, value):
            disagree.append((value, warnings))

    assert disagree == []


@pytest.mark.parametrize("field", FIELDS)
def test_the_default_is_valid(field: Field) -> None:
    _, warnings = merge(DEFAULTS, {camel(field.name): field.default}, origin="test")

    assert warnings == []
    assert json_allows(contributed(field.name), field.default)


@pytest.mark.parametrize(
    "name", [pytest.param(name, id=name) for name, f in SCHEMA.items() if not f.spec.from_project]
)
def test_not_from_project_is_refused_from_pyproject(name: str) -> None:
    merged, warnings = merge(DEFAULTS, {camel(name): "X"}, origin="/p/pyproject.toml")

    assert merged == DEFAULTS
    assert "a project cannot choose it" in warnings[0]


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in PRESETS])
def test_presets_are_defined_once(name: str) -> None:
    preset = PRESETS[name]

    assert budget.TOKEN_PRESETS[name] == preset.tokens
    assert budget.SECONDS_PRESETS[name] == preset.seconds
    assert budget.MIN_CANDIDATES[name] == preset.min_candidates
    assert f"`{name}` ({preset.tokens})" in SCHEMA["budget"].spec.description
    assert f"{preset.seconds:g}" in SCHEMA["budget_seconds"].spec.description
