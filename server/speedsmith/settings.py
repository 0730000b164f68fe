"""Settings: one declared schema, a default for every field, camelCase on the wire.

Every field of ``Settings`` is declared with ``setting(default, description, bounds...)``: its
type (the annotation), default, bounds, allowed values and one-line description live there and
nowhere else. Validation (``merge``), the README's configuration table (``markdown_table``) and
the VS Code extension's ``contributes.configuration`` (``editors/vscode/scripts/sync_settings.py``)
are derived from it; ``tests/test_settings_schema.py`` fails when they disagree.

Precedence, lowest first:

1. the defaults below;
2. LSP ``initializationOptions``;
3. LSP ``workspace/configuration`` (section ``speedsmith``);
4. the project's ``pyproject.toml`` ``[tool.speedsmith]`` table;
5. command-line flags (CLI only).

Unknown keys and invalid values never fail: they are dropped with a warning and the
default (or the lower layer's value) is kept.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Preset:
    """A budget preset: generated tokens, wall-clock cap, and the candidates it pays for at
    least (``search/budget.py`` grows the tokens to that many per-candidate caps)."""

    tokens: int
    seconds: float
    min_candidates: int


PRESETS: dict[str, Preset] = {
    "quick": Preset(tokens=600, seconds=120.0, min_candidates=4),
    "standard": Preset(tokens=2000, seconds=300.0, min_candidates=12),
    "max": Preset(tokens=8000, seconds=1200.0, min_candidates=40),
}
"""The budget presets, defined once (``search/budget.py`` reads them)."""
BUDGET_PRESETS = tuple(PRESETS)
CANDIDATE_LIMIT = 100
"""A numeric budget below this is a number of candidates (the old meaning); from it up, tokens."""
NUMERIC_BUDGET_SECONDS = 600.0
"""Wall-clock cap of a numeric budget when ``budgetSeconds`` is not set."""

STRATEGIES = ("best-of-n", "revision", "beam", "maxmode", "adaptive")
"""Search strategies (``search/strategies.py``)."""
BACKENDS = ("llama", "replay", "openai")
SANDBOX_MODES = ("auto", "bubblewrap", "namespaces", "weak")
"""Sandbox strengths (``verify/confine.py``); ``weak`` is the only one without namespaces."""


@dataclass(frozen=True)
class Spec:
    """What a field declares besides its type and default."""

    description: str
    """One line: the README table and the editors show it."""
    minimum: float | None = None
    """Smallest allowed number (inclusive)."""
    positive: bool = False
    """Numbers must be above 0."""
    choices: tuple[str, ...] = ()
    """The allowed strings (for ``str | int`` fields: the strings allowed next to numbers)."""
    shown_default: str | None = None
    """How the docs show the default when the value itself says little (e.g. ``None``)."""
    machine: bool = False
    """About this machine rather than the project (editors scope it ``machine-overridable``)."""
    from_project: bool = True
    """Whether a project's ``pyproject.toml`` may set it (VS Code: nor its workspace settings,
    scope ``machine``). A cloned project must not pick the server your code and API key go to,
    nor which of your environment variables is sent there (docs/inference.md)."""


def setting(
    default: T,
    description: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    choices: tuple[str, ...] = (),
    shown_default: str | None = None,
    machine: bool = False,
    from_project: bool = True,
) -> T:
    """Declare a field of ``Settings`` (see ``Spec``)."""
    spec = Spec(description, minimum, positive, choices, shown_default, machine, from_project)
    return dataclasses.field(default=default, metadata={"spec": spec})  # type: ignore[no-any-return]


def _budget_description(what: str) -> str:
    presets = ", ".join(f"`{name}` ({p.tokens})" for name, p in PRESETS.items())
    return (
        f"{what}: generated tokens the search may spend: {presets}, a number >= "
        f"{CANDIDATE_LIMIT} (tokens), or a number < {CANDIDATE_LIMIT} (candidates: that many "
        "times the per-candidate token cap; best-of-n then draws exactly that many)."
    )


def _seconds_description() -> str:
    caps = " / ".join(f"{p.seconds:g}" for p in PRESETS.values())
    return (
        "Wall-clock cap of the search (generation and verification), in seconds; null: "
        f"{caps} s for the presets, {NUMERIC_BUDGET_SECONDS:g} s for numbers."
    )


@dataclass(frozen=True)
class Settings:
    """Every option speedsmith reads. Field names are snake_case; the wire uses camelCase."""

    model_path: str | None = setting(
        None, "A GGUF model file.", shown_default="the embedded model", machine=True
    )
    n_gpu_layers: int = setting(
        -1,
        "Layers offloaded to the GPU (-1: all; 0: none); ignored by CPU-only builds of llama.cpp.",
        machine=True,
    )
    n_threads: int | None = setting(
        None,
        "Threads for generation; null: llama.cpp's choice.",
        positive=True,
        shown_default="llama.cpp's choice",
        machine=True,
    )
    n_ctx: int = setting(
        2048, "Context window of the model, in tokens.", positive=True, machine=True
    )
    batch_width: int = setting(
        1,
        "llama backend: candidates of a round decoded together in one llama.cpp batch "
        "(the shared prompt evaluated once); 1: one at a time.",
        minimum=1,
    )
    speculative_tokens: int = setting(
        0,
        "llama backend: tokens drafted from the prompt per decode step when candidates are made "
        "one at a time (prompt-lookup speculation); 0: off. Not faster on a CPU; try 2-4 on a "
        "GPU or with a larger model (docs/inference.md).",
        minimum=0,
        machine=True,
    )
    budget: str | int = setting(
        "quick", _budget_description("Search budget"), minimum=1, choices=BUDGET_PRESETS
    )
    budget_seconds: float | None = setting(
        None, _seconds_description(), positive=True, shown_default="per preset"
    )
    strategy: str = setting(
        "best-of-n",
        "How the budget is spent: best-of-n, revision, beam, maxmode or adaptive "
        "(see docs/search.md).",
        choices=STRATEGIES,
    )
    beam_width: int = setting(3, "beam: candidates kept per round.", minimum=1)
    beam_expand: int = setting(2, "beam: revisions of each kept candidate per round.", minimum=1)
    maxmode_width: int = setting(5, "maxmode: branches, one hypothesis each.", minimum=1)
    maxmode_depth: int = setting(10, "maxmode: correction rounds.", minimum=1)
    maxmode_hypotheses: int = setting(
        6,
        "maxmode: optimisation hypotheses proposed (those beyond the width wait in reserve).",
        minimum=1,
    )
    maxmode_update_every: int = setting(
        2, "maxmode: rounds between re-rankings of the hypotheses.", minimum=1
    )
    adaptive_probe_size: int = setting(
        4,
        "adaptive: samples per batch of the difficulty probe (more batches, up to a quarter of "
        "the budget, while nothing equivalent turns up).",
        minimum=1,
    )
    adaptive_patience: int = setting(
        3, "adaptive: revision rounds without improvement before an easy search stops.", minimum=1
    )
    min_speedup: float = setting(
        1.1, "The 95% confidence interval's lower bound the speedup must clear.", minimum=1.0
    )
    seed: int | None = setting(
        None, "Makes sampling repeatable; null: time-based.", shown_default="time-based"
    )
    temperature: float = setting(
        0.7, "Base sampling temperature (spread across samples).", minimum=0
    )
    backend: str = setting(
        "llama",
        "`llama` (the local model), `openai` (an OpenAI-compatible server: `openai*`) or "
        "`replay` (candidates from `replayFile`, for tests and demos).",
        choices=BACKENDS,
    )
    replay_file: str | None = setting(
        None, "replay backend: a JSON file of candidates (tests and demos)."
    )
    openai_base_url: str = setting(
        "http://127.0.0.1:8080/v1",
        "openai backend: the OpenAI-compatible endpoint (llama-server, vLLM, Ollama, ...); "
        "user settings only: a project's pyproject.toml or workspace settings cannot set it.",
        from_project=False,
    )
    openai_model: str | None = setting(
        None,
        "openai backend: the model name; null: the first model the server lists.",
        shown_default="the server's first",
    )
    openai_api_key_env: str = setting(
        "SPEEDSMITH_OPENAI_API_KEY",
        "openai backend: the environment variable holding the API key (never the key itself; "
        "unset or empty: no key is sent); user settings only, like `openaiBaseUrl`.",
        from_project=False,
    )
    openai_concurrency: int = setting(
        4,
        "openai backend: requests in flight at once (the candidates of a round go together).",
        minimum=1,
    )
    openai_timeout_seconds: float = setting(
        120.0,
        "openai backend: limit, in seconds, for one request (retried with backoff).",
        positive=True,
    )
    python: str | None = setting(
        None,
        "Interpreter (or virtualenv folder) that runs your tests and the candidates; it needs "
        "pytest, not speedsmith. null: `$VIRTUAL_ENV`, else `.venv` or `venv` in the project "
        "root, else speedsmith's own.",
        shown_default="the project's",
    )
    float_rel_tol: float = setting(1e-9, "Relative tolerance when comparing floats.", minimum=0)
    float_abs_tol: float = setting(1e-12, "Absolute tolerance when comparing floats.", minimum=0)
    max_recorded_calls: int = setting(
        200, "Calls of the function recorded from your tests.", positive=True
    )
    workload_timeout_seconds: float = setting(
        120.0, "Limit, in seconds, for one run of your tests.", positive=True
    )
    candidate_timeout_seconds: float = setting(
        30.0, "Limit, in seconds, for one candidate's replay (sandbox).", positive=True
    )
    candidate_memory_mb: int = setting(
        2048, "Address-space limit of a candidate's process, in MB (sandbox).", positive=True
    )
    compare_exception_messages: bool = setting(
        True,
        "Exceptions must match by type and, when the message has no memory address, message.",
    )
    generated_examples: int = setting(
        30,
        "Inputs Hypothesis draws from the type hints of an annotated function (0: off).",
        minimum=0,
    )
    generated_seconds: float = setting(
        0.5, "Time limit, in seconds, for drawing generated inputs.", minimum=0
    )
    timing_max_rounds: int = setting(40, "Cap of the interleaved timing rounds.", positive=True)
    timing_max_seconds: float = setting(10.0, "Cap of the timing, in seconds.", positive=True)
    on_save: bool = setting(
        False,
        "Language server: look for a faster version of each function changed since the last "
        "save, in the background, and show a hint with a quick fix when one is verified "
        "(off by default: it runs the model after every save).",
    )
    on_save_budget: str | int = setting(
        "quick",
        _budget_description("Budget of a background run"),
        minimum=1,
        choices=BUDGET_PRESETS,
    )
    on_save_debounce_seconds: float = setting(
        1.0,
        "Language server: a background run starts only once this many seconds have passed "
        "since the last save of its file (each save restarts the wait; 0: at once).",
        minimum=0,
    )
    sandbox: str = setting(
        "auto",
        "Where candidates run: `auto` (bubblewrap, else Linux namespaces, else refuse), "
        "`bubblewrap`, `namespaces`, or `weak` (opt-in, no namespaces: see SECURITY.md).",
        choices=SANDBOX_MODES,
    )
    allow_side_effects: bool = setting(
        False,
        "Verify functions whose recorded calls write files, run processes, use the network, "
        "read the clock or use randomness (refused by default).",
    )
    gate_network: bool = setting(
        False, "Final gate (your tests with the winner substituted): allow network access."
    )
    gate_full_environment: bool = setting(
        False, "Final gate: pass your whole environment (tokens included), not the allow-list."
    )


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Field:
    """One setting as the schema declares it."""

    name: str
    """snake_case (``camel(name)`` on the wire)."""
    kinds: tuple[type, ...]
    """The types a value may have, from the annotation (``None`` excluded)."""
    nullable: bool
    default: Any
    spec: Spec


_KINDS = {"str": str, "int": int, "float": float, "bool": bool}


def _field(f: dataclasses.Field[Any]) -> Field:
    parts = [part.strip() for part in str(f.type).split("|")]
    spec = f.metadata.get("spec")
    if not isinstance(spec, Spec):
        raise TypeError(f"Settings.{f.name} is not declared with setting(...)")
    return Field(
        name=f.name,
        kinds=tuple(_KINDS[part] for part in parts if part != "None"),
        nullable="None" in parts,
        default=f.default,
        spec=spec,
    )


SCHEMA: dict[str, Field] = {f.name: _field(f) for f in dataclasses.fields(Settings)}
"""Every setting, in declaration order, by snake_case name."""
NOT_FROM_PROJECT = frozenset(name for name, f in SCHEMA.items() if not f.spec.from_project)
"""Settings a project's pyproject.toml cannot set."""


def _check_bounds(f: Field, value: float) -> None:
    spec = f.spec
    if spec.positive and value <= 0:
        raise ValueError("must be positive")
    if spec.minimum is not None and value < spec.minimum:
        if spec.minimum == 0:
            raise ValueError("must not be negative")
        raise ValueError(f"must be at least {spec.minimum!r}")


def _coerce(name: str, value: Any) -> Any:
    """Return the value converted to the field's type, within its bounds, or raise ValueError."""
    f = SCHEMA[name]
    spec = f.spec
    if f.kinds == (int,) and spec.minimum == 1:  # the counts
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("expected a positive integer")
        return value
    if value is None:
        if f.nullable:
            return None
        raise ValueError("must not be null")
    if str in f.kinds and int in f.kinds:  # a choice or a number (the budgets)
        expected = "expected a positive integer or one of " + ", ".join(spec.choices)
        if isinstance(value, str) and value in spec.choices:
            return value
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(expected)
        try:
            _check_bounds(f, value)
        except ValueError:
            raise ValueError(expected) from None
        return value
    (kind,) = f.kinds
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if kind is str:
        if spec.choices and value not in spec.choices:
            raise ValueError("expected one of " + ", ".join(spec.choices))
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer" if kind is int else "expected a number")
    if kind is int and not isinstance(value, int):
        raise ValueError("expected an integer")
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    _check_bounds(f, value)
    return float(value) if kind is float else value


def merge(
    base: Settings, options: Mapping[str, Any] | None, *, origin: str
) -> tuple[Settings, list[str]]:
    """Overlay ``options`` (camelCase or snake_case keys) on ``base``.

    Returns the new settings and one warning per ignored key or invalid value.
    """
    if not options:
        return base, []
    if not isinstance(options, Mapping):
        return base, [f"{origin}: expected an object of settings, ignored"]
    changes: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in options.items():
        name = snake(str(key))
        if name not in SCHEMA:
            warnings.append(f"{origin}: unknown setting {key!r} ignored")
            continue
        if name in NOT_FROM_PROJECT and origin.endswith("pyproject.toml"):
            warnings.append(
                f"{origin}: setting {key!r} ignored: a project cannot choose it (set it in "
                "your editor's user settings)"
            )
            continue
        try:
            changes[name] = _coerce(name, value)
        except ValueError as err:
            warnings.append(f"{origin}: setting {key!r}={value!r} ignored: {err}")
    return dataclasses.replace(base, **changes), warnings


def from_pyproject(project_root: Path) -> dict[str, Any]:
    """The ``[tool.speedsmith]`` table of ``project_root/pyproject.toml`` ({} if none)."""
    path = project_root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8, not TOML
        return {}
    tool = data.get("tool")
    table = tool.get("speedsmith", {}) if isinstance(tool, dict) else {}
    return table if isinstance(table, dict) else {}


def to_wire(settings: Settings) -> dict[str, Any]:
    """camelCase dict of every field (used for docs and the editors' defaults check)."""
    return {camel(f.name): getattr(settings, f.name) for f in dataclasses.fields(settings)}


# -- what the schema derives ----------------------------------------------------------------------


def json_schema(f: Field) -> dict[str, Any]:
    """The field as JSON Schema (what VS Code's ``contributes.configuration`` takes)."""
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    types_ = [names[kind] for kind in f.kinds] + (["null"] if f.nullable else [])
    result: dict[str, Any] = {"type": types_[0] if len(types_) == 1 else types_}
    if f.spec.choices and f.kinds == (str,):
        result["enum"] = list(f.spec.choices) + ([None] if f.nullable else [])
    elif f.spec.choices:
        result["anyOf"] = [
            {"type": "string", "enum": list(f.spec.choices)},
            {"type": "integer", "minimum": f.spec.minimum or 1},
        ]
    elif int in f.kinds or float in f.kinds:
        if f.spec.positive:
            result["exclusiveMinimum"] = 0
        if f.spec.minimum is not None:
            result["minimum"] = f.spec.minimum
    return result


def shown_default(f: Field) -> str:
    """The default as the README table shows it."""
    if f.spec.shown_default is not None:
        return f.spec.shown_default
    return f"`{json.dumps(f.default)}`"


def markdown_table() -> str:
    """The README's configuration table: every setting, its default and its description."""
    rows = ["| setting (wire name) | default | meaning |", "|---|---|---|"]
    for f in SCHEMA.values():
        description = f.spec.description.replace("|", "\\|")
        rows.append(f"| `{camel(f.name)}` | {shown_default(f)} | {description} |")
    return "\n".join(rows) + "\n"


DEFAULTS = Settings()
__all__ = [
    "BUDGET_PRESETS",
    "DEFAULTS",
    "PRESETS",
    "SCHEMA",
    "Settings",
    "camel",
    "from_pyproject",
    "markdown_table",
    "merge",
    "snake",
    "to_wire",
]
