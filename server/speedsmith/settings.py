"""Settings: one typed object, a default for every field, camelCase on the wire.

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
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUDGET_PRESETS = ("quick", "standard", "max")
"""Budget presets: 600, 2000 and 8000 generated tokens (``search/budget.py``)."""

STRATEGIES = ("best-of-n", "revision", "beam", "maxmode", "adaptive")
"""Search strategies (``search/strategies.py``)."""
_POSITIVE_INTS = {
    "beam_width",
    "beam_expand",
    "maxmode_width",
    "maxmode_depth",
    "maxmode_hypotheses",
    "maxmode_update_every",
    "adaptive_probe_size",
    "adaptive_patience",
    "openai_concurrency",
    "batch_width",
}

BACKENDS = ("llama", "replay", "openai")
NOT_FROM_PROJECT = frozenset({"openai_api_key_env"})
"""Settings a project's pyproject.toml cannot set: a cloned project must not pick which of your
environment variables is sent to the server it names."""
SANDBOX_MODES = ("auto", "bubblewrap", "namespaces", "weak")
"""Sandbox strengths (``verify/confine.py``); ``weak`` is the only one without namespaces."""


@dataclass(frozen=True)
class Settings:
    """Every option speedsmith reads. Field names are snake_case; the wire uses camelCase."""

    model_path: str | None = None
    """A GGUF file; None means the embedded SmolLM2-135M-Instruct model."""
    n_gpu_layers: int = -1
    """Layers offloaded to the GPU (-1: all, the default; 0: none). Ignored by CPU-only builds
    of llama.cpp (``llama_supports_gpu_offload()`` false)."""
    n_threads: int | None = None
    """Threads for generation; None lets llama.cpp choose."""
    n_ctx: int = 2048
    batch_width: int = 1
    """llama backend: candidates of a round decoded together in one llama.cpp batch (one
    sequence each, the shared prompt evaluated once); 1: one at a time."""
    budget: str | int = "quick"
    """Search budget: a preset (quick = 600, standard = 2000, max = 8000 generated tokens), a
    number of tokens (100 or more), or a number of candidates (below 100, the old meaning: that
    many times the per-candidate token cap). See ``search/budget.py``."""
    budget_seconds: float | None = None
    """Wall-clock cap of the search; None: 120 / 300 / 1200 s for the presets, 600 s for numbers."""
    strategy: str = "best-of-n"
    """How the budget is spent: best-of-n, revision, beam, maxmode or adaptive."""
    beam_width: int = 3
    """beam: candidates kept per round."""
    beam_expand: int = 2
    """beam: revisions of each kept candidate per round."""
    maxmode_width: int = 5
    """maxmode: branches, one hypothesis each."""
    maxmode_depth: int = 10
    """maxmode: correction rounds."""
    maxmode_hypotheses: int = 6
    """maxmode: optimisation hypotheses proposed (the ones beyond the width wait in reserve)."""
    maxmode_update_every: int = 2
    """maxmode: rounds between re-rankings of the hypotheses."""
    adaptive_probe_size: int = 4
    """adaptive: samples per batch of the difficulty probe (more batches, up to a quarter of the
    budget, while nothing equivalent turns up)."""
    adaptive_patience: int = 3
    """adaptive: revision rounds without improvement before an easy search stops."""
    min_speedup: float = 1.1
    """Lower 95% confidence bound the speedup must clear."""
    seed: int | None = None
    temperature: float = 0.7
    backend: str = "llama"
    """``llama`` (real model), ``openai`` (an OpenAI-compatible server: ``openai_*``) or
    ``replay`` (candidates from ``replay_file``)."""
    replay_file: str | None = None
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    """openai backend: the OpenAI-compatible endpoint (llama-server, vLLM, Ollama, ...)."""
    openai_model: str | None = None
    """openai backend: the model name; None: the first model the server lists."""
    openai_api_key_env: str = "SPEEDSMITH_OPENAI_API_KEY"
    """openai backend: the environment variable holding the API key (the key itself is never
    stored in settings); unset or empty: no key is sent."""
    openai_concurrency: int = 4
    """openai backend: requests in flight at once (the candidates of a round go together)."""
    openai_timeout_seconds: float = 120.0
    """openai backend: limit, in seconds, for one request (retried with backoff)."""
    python: str | None = None
    """Interpreter (or virtualenv folder) that runs the project's tests and the candidates;
    None: ``$VIRTUAL_ENV``, else ``.venv`` or ``venv`` in the project root, else the one
    running speedsmith. It needs pytest, not speedsmith."""
    float_rel_tol: float = 1e-9
    float_abs_tol: float = 1e-12
    max_recorded_calls: int = 200
    workload_timeout_seconds: float = 120.0
    candidate_timeout_seconds: float = 30.0
    candidate_memory_mb: int = 2048
    compare_exception_messages: bool = True
    """Exceptions must match by type and, when the message has no memory address, message."""
    generated_examples: int = 30
    """Inputs Hypothesis draws from the type hints of an annotated function (0: off)."""
    generated_seconds: float = 0.5
    timing_max_rounds: int = 40
    timing_max_seconds: float = 10.0
    on_save: bool = False
    """Language server: look for a faster version of each function changed since the last
    save, in the background, and show a hint with a quick fix when one is verified."""
    on_save_budget: str | int = "quick"
    """Budget of those background runs (same forms as ``budget``)."""
    sandbox: str = "auto"
    """Where candidates run: ``auto`` (bubblewrap, else Linux namespaces, else refuse),
    ``bubblewrap``, ``namespaces``, or ``weak`` (opt-in: only process limits and Landlock
    where present; a candidate can then write wherever your user can)."""
    allow_side_effects: bool = False
    """Verify functions that write files, run processes, use the network, read the clock or
    use randomness on the recorded calls (refused by default: the comparison cannot be
    trusted and the sandbox stops what they do)."""
    gate_network: bool = False
    """Final gate (your tests with the winner substituted): allow network access."""
    gate_full_environment: bool = False
    """Final gate: pass your whole environment (tokens included) instead of the allow-list."""


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    """Return the value converted to the field's type, or raise ValueError."""
    if name in ("budget", "on_save_budget"):
        if isinstance(value, bool):
            raise ValueError("expected a positive integer or one of " + ", ".join(BUDGET_PRESETS))
        if isinstance(value, int) and value > 0:
            return value
        if isinstance(value, str) and value.isdigit() and int(value) > 0:
            return int(value)
        if isinstance(value, str) and value in BUDGET_PRESETS:
            return value
        raise ValueError("expected a positive integer or one of " + ", ".join(BUDGET_PRESETS))
    if name == "strategy":
        if value not in STRATEGIES:
            raise ValueError("expected one of " + ", ".join(STRATEGIES))
        return value
    if name in _POSITIVE_INTS and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise ValueError("expected a positive integer")
    if name == "budget_seconds" and value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError("expected a positive number of seconds")
        return float(value)
    if name == "backend":
        if value not in BACKENDS:
            raise ValueError("expected one of " + ", ".join(BACKENDS))
        return value
    if name == "sandbox":
        if value not in SANDBOX_MODES:
            raise ValueError("expected one of " + ", ".join(SANDBOX_MODES))
        return value
    default = _FIELDS[name].default
    optional = default is None or name in {"seed", "n_threads", "model_path", "python"}
    if value is None:
        if optional:
            return None
        raise ValueError("must not be null")
    kind: type = type(default) if default is not None else _optional_kind(name)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected an integer")
        return _in_range(name, value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("expected a number")
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        if name == "min_speedup" and value < 1.0:
            raise ValueError("must be at least 1.0")
        return float(_in_range(name, value))
    if kind is str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    raise ValueError("unsupported")  # pragma: no cover


_MAY_BE_NEGATIVE = frozenset({"n_gpu_layers", "seed"})
_MAY_BE_ZERO = frozenset(
    {"temperature", "float_rel_tol", "float_abs_tol", "generated_examples", "generated_seconds"}
)


def _in_range(name: str, value: float) -> float:
    """Counts, limits and timeouts must be positive; a few fields may be 0 or negative."""
    if name in _MAY_BE_NEGATIVE:
        return value
    if name in _MAY_BE_ZERO:
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _optional_kind(name: str) -> type:
    return {
        "seed": int,
        "n_threads": int,
        "model_path": str,
        "python": str,
        "replay_file": str,
        "openai_model": str,
        "budget_seconds": float,
    }[name]


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
        if name not in _FIELDS:
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


DEFAULTS = Settings()
__all__ = ["BUDGET_PRESETS", "DEFAULTS", "Settings", "from_pyproject", "merge", "to_wire"]
