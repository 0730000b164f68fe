"""Write package.json's contributed settings from the server's one settings object.

``speedsmith.settings.Settings`` is the one source of truth: every field becomes a
``speedsmith.<camelCase>`` setting with the field's default, a JSON type derived from it and the
field's docstring as its description. Only the extension's own settings (how to start the
server, tracing) are defined here. ``tests/vscode/test_vscode_settings.py`` fails when
package.json is out of date; then run, from the repository root::

    PYTHONPATH=server .venv/bin/python editors/vscode/scripts/sync_settings.py
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE_JSON = HERE.parent / "package.json"
SETTINGS_PY = HERE.parents[2] / "server" / "speedsmith" / "settings.py"

MACHINE = {"model_path", "n_gpu_layers", "n_threads", "n_ctx"}
"""Settings about this machine (scope ``machine-overridable``); the others are per project."""

FALLBACK_DESCRIPTIONS = {
    "n_ctx": "Context window of the model, in tokens.",
    "seed": "Makes sampling repeatable; null: time-based.",
    "temperature": "Base sampling temperature (spread across samples).",
    "replay_file": "For the replay backend: a JSON file of candidates (tests and demos).",
    "float_rel_tol": "Relative tolerance when comparing float results.",
    "float_abs_tol": "Absolute tolerance when comparing float results.",
    "max_recorded_calls": "Calls of the function recorded from the tests.",
    "workload_timeout_seconds": "Limit, in seconds, for one run of your tests.",
    "candidate_timeout_seconds": "Limit, in seconds, for one candidate's replay (sandbox).",
    "candidate_memory_mb": "Address-space limit of a candidate's process, in MB (sandbox).",
    "timing_max_rounds": "Cap of the interleaved timing rounds.",
    "timing_max_seconds": "Cap of the timing, in seconds.",
    "generated_seconds": "Time limit, in seconds, for drawing generated inputs.",
}

EXTRA_DESCRIPTIONS = {
    "python": " In VS Code it also starts the server (`-m speedsmith serve`) unless "
    "`#speedsmith.serverCommand#` is set; changing it restarts the server.",
    "on_save": " Off by default: it runs the model after every save.",
}

CLIENT_PROPERTIES: dict[str, Any] = {
    "speedsmith.serverCommand": {
        "type": ["array", "null"],
        "items": {"type": "string"},
        "default": None,
        "scope": "machine-overridable",
        "markdownDescription": (
            'Command that starts the language server, e.g. `["speedsmith", "serve"]` or '
            '`["/path/to/.venv/bin/speedsmith", "serve"]`. null: '
            "`<speedsmith.python> -m speedsmith serve` (`python3` when that is null too). "
            "Changing it restarts the server."
        ),
        "order": 0,
    },
    "speedsmith.trace.server": {
        "type": "string",
        "enum": ["off", "messages", "verbose"],
        "default": "off",
        "scope": "window",
        "description": "Log the messages between VS Code and the server (speedsmith output).",
        "order": 1,
    },
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def docstrings(path: Path = SETTINGS_PY) -> dict[str, str]:
    """Each ``Settings`` field's docstring (the string right after its annotation)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    result: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            body = node.body
            for index, statement in enumerate(body):
                following = body[index + 1] if index + 1 < len(body) else None
                if (
                    isinstance(statement, ast.AnnAssign)
                    and isinstance(statement.target, ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    result[statement.target.id] = " ".join(following.value.value.split())
    return result


def json_type(field: dataclasses.Field[Any]) -> Any:
    annotation = str(field.type).replace(" ", "")
    parts = [p for p in annotation.split("|") if p != "None"]
    names = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    types = [names[p] for p in parts if p in names]
    if "None" in annotation.split("|"):
        types.append("null")
    return types[0] if len(types) == 1 else types


def properties() -> dict[str, Any]:
    """The ``contributes.configuration.properties`` object package.json must hold."""
    from speedsmith import settings as server_settings

    described = docstrings()
    result: dict[str, Any] = dict(CLIENT_PROPERTIES)
    for order, field in enumerate(dataclasses.fields(server_settings.Settings), start=10):
        prop: dict[str, Any] = {"type": json_type(field), "default": field.default}
        if field.name in ("strategy",) and hasattr(server_settings, "STRATEGIES"):
            prop["enum"] = list(server_settings.STRATEGIES)
        if field.name == "backend":
            prop["enum"] = list(server_settings.BACKENDS)
        if field.name == "min_speedup":
            prop["minimum"] = 1.0
        description = described.get(field.name) or FALLBACK_DESCRIPTIONS.get(field.name)
        description = description or f"See speedsmith's settings ({field.name})."
        description = re.sub(r"\bNone\b", "null", description.replace("``", "`"))
        prop["markdownDescription"] = description + EXTRA_DESCRIPTIONS.get(field.name, "")
        prop["scope"] = "machine-overridable" if field.name in MACHINE else "resource"
        prop["order"] = order
        result[f"speedsmith.{camel(field.name)}"] = prop
    return result


def main() -> int:
    package = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    package["contributes"]["configuration"]["properties"] = properties()
    PACKAGE_JSON.write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(package['contributes']['configuration']['properties'])} settings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
