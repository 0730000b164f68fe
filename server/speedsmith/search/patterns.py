"""Known Python speedups: a small library of patterns, each with a detector, an example and an idea.

Each ``Pattern`` has

* a **detector**: a check over the function's syntax tree (``ast``), and/or the ruff rules
  (``ruff check --output-format json``) that find the same thing; ruff runs once per function
  as a subprocess on the function plus its imports (``ruff_findings``), and when its binary is
  missing the ``ast`` detectors still run;
* a short **before/after example** (written for this library; the before is the slow way);
* a **hypothesis**: one sentence the model can follow.

``detect`` returns the patterns found in a function, in library order. Their hypotheses become
the hints of the model's prompt (``prompt.build_prompt``) and the first of maxmode's hypotheses
(``strategies.maxmode_strategy``). The examples document the library and its tests; they are
not shown to the model, which copied their names and parameters (docs/search.md).
``search/tools.py`` makes candidates without the model for the mechanical ones.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
Detector = Callable[[FunctionNode], bool]


@dataclass(frozen=True)
class Pattern:
    id: str
    hypothesis: str
    """One sentence for the model (no final period)."""
    before: str
    """A small slow function."""
    after: str
    """The same function, the fast way."""
    ruff: tuple[str, ...] = ()
    """Ruff rule codes that detect this pattern."""
    detector: Detector | None = None


# -- ast helpers ----------------------------------------------------------------------------

LOOPS = (ast.For, ast.AsyncFor, ast.While)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _loops(fn: FunctionNode) -> Iterator[ast.AST]:
    for node in ast.walk(fn):
        if isinstance(node, LOOPS + COMPREHENSIONS):
            yield node


def _in_loops(fn: FunctionNode) -> Iterator[ast.AST]:
    """Every node that runs once per iteration of some loop or comprehension."""
    for loop in _loops(fn):
        if isinstance(loop, ast.For | ast.AsyncFor):
            parts: list[ast.AST] = [*loop.body, *loop.orelse]
        elif isinstance(loop, ast.While):
            parts = [loop.test, *loop.body]
        else:
            assert isinstance(loop, COMPREHENSIONS)
            parts = [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
            for index, generator in enumerate(loop.generators):
                parts += generator.ifs
                if index:
                    parts.append(generator.iter)
        for part in parts:
            yield from ast.walk(part)


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _call_to(node: ast.AST, module: str, names: set[str] | None = None) -> bool:
    """``module.name(...)``, e.g. ``re.match(...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _name(node.func.value) == module
        and (names is None or node.func.attr in names)
    )


def _string_names(fn: FunctionNode) -> set[str]:
    """Names assigned a string literal or an f-string somewhere in the function."""
    found: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and (
            isinstance(node.value, ast.JoinedStr)
            or (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        ):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return found


# -- detectors ------------------------------------------------------------------------------


def _append_loop(fn: FunctionNode) -> bool:
    for loop in ast.walk(fn):
        if isinstance(loop, ast.For | ast.AsyncFor):
            for node in ast.walk(loop):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"append", "add"}
                    and isinstance(node.func.value, ast.Name)
                ):
                    return True
    return False


def _list_membership(fn: FunctionNode) -> bool:
    for node in _in_loops(fn):
        if (
            isinstance(node, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(isinstance(c, ast.Name | ast.List | ast.Attribute) for c in node.comparators)
        ):
            return True
    return False


def _string_concat(fn: FunctionNode) -> bool:
    strings = _string_names(fn)
    for node in _in_loops(fn):
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            value = node.value
            if _name(node.target) in strings or isinstance(value, ast.JoinedStr):
                return True
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return True
    return False


def _manual_count(fn: FunctionNode) -> bool:
    for node in _in_loops(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "count"
        ):
            return True
        if (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Subscript)
            and isinstance(node.op, ast.Add)
        ):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and len(node.args) == 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == 0
        ):
            return True
    return False


def _range_len(fn: FunctionNode) -> bool:
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and _name(node.func) == "range"
            and node.args
            and isinstance(node.args[-1], ast.Call)
            and _name(node.args[-1].func) == "len"
        ):
            return True
    return False


def _sorted_first(fn: FunctionNode) -> bool:
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Call)
            and _name(node.value.func) == "sorted"
            and isinstance(node.slice, ast.Constant | ast.UnaryOp)
        ):
            return True
    return False


REGEX_FUNCTIONS = {"match", "search", "fullmatch", "findall", "finditer", "split", "sub", "subn"}


def _regex_in_loop(fn: FunctionNode) -> bool:
    return any(_call_to(node, "re", REGEX_FUNCTIONS | {"compile"}) for node in _in_loops(fn))


def _lookups_in_loop(fn: FunctionNode) -> bool:
    calls = [
        node
        for node in _in_loops(fn)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name | ast.Attribute)
    ]
    return len(calls) >= 1


def _builtin_loop(fn: FunctionNode) -> bool:
    for loop in ast.walk(fn):
        if not isinstance(loop, ast.For) or len(loop.body) != 1:
            continue
        (statement,) = loop.body
        if isinstance(statement, ast.If) and len(statement.body) == 1:
            inner = statement.body[0]
            if isinstance(inner, ast.Return | ast.Break):
                return True  # any/all/next
            if isinstance(inner, ast.Assign | ast.AugAssign):
                return True  # max/min/sum with a condition
        if isinstance(statement, ast.AugAssign) and isinstance(statement.op, ast.Add | ast.Mult):
            return True  # sum
    return False


def _sorted_scan(fn: FunctionNode) -> bool:
    """A loop that compares each item with a bound and stops: a linear search."""
    for loop in ast.walk(fn):
        if not isinstance(loop, ast.For | ast.While):
            continue
        for node in ast.walk(loop):
            if not isinstance(node, ast.If):
                continue
            ordered = isinstance(node.test, ast.Compare) and any(
                isinstance(op, ast.Lt | ast.LtE | ast.Gt | ast.GtE) for op in node.test.ops
            )
            stops = any(isinstance(s, ast.Return | ast.Break) for s in node.body)
            if ordered and stops:
                return True
    return False


def _recursion(fn: FunctionNode) -> bool:
    calls = [
        node
        for node in ast.walk(fn)
        if isinstance(node, ast.Call)
        and (_name(node.func) == fn.name or getattr(node.func, "attr", None) == fn.name)
    ]
    return len(calls) >= 2


def _nested_loops(fn: FunctionNode) -> bool:
    for loop in ast.walk(fn):
        if isinstance(loop, ast.For):
            inner = [n for stmt in loop.body for n in ast.walk(stmt) if isinstance(n, ast.For)]
            if inner:
                return True
        if isinstance(loop, COMPREHENSIONS) and len(loop.generators) > 1:
            return True
    return False


# -- the library ----------------------------------------------------------------------------

PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "append-loop",
        "Build the list with a list comprehension instead of calling append in a loop",
        "def doubled(xs):\n    out = []\n    for x in xs:\n        out.append(2 * x)\n"
        "    return out",
        "def doubled(xs):\n    return [2 * x for x in xs]",
        ("PERF401", "PERF402", "PERF403", "FURB113", "FURB140"),
        _append_loop,
    ),
    Pattern(
        "list-membership",
        "Test membership in a set built once before the loop instead of in a list",
        "def known(words, vocab):\n    return [w for w in words if w in vocab]",
        "def known(words, vocab):\n    vocab = set(vocab)\n"
        "    return [w for w in words if w in vocab]",
        ("PLR6201", "PLR1714", "FURB171"),
        _list_membership,
    ),
    Pattern(
        "string-concat",
        "Collect the pieces and join them with str.join instead of += on a string in a loop",
        "def joined(words):\n    s = ''\n    for w in words:\n        s += w + ','\n    return s",
        "def joined(words):\n    return ''.join(w + ',' for w in words)",
        (),
        _string_concat,
    ),
    Pattern(
        "manual-count",
        "Count with collections.Counter or dict.get instead of a manual counting loop or "
        "repeated list.count",
        "def counts(xs):\n    c = {}\n    for x in xs:\n        c[x] = c.get(x, 0) + 1\n"
        "    return c",
        "def counts(xs):\n    from collections import Counter\n    return dict(Counter(xs))",
        (),
        _manual_count,
    ),
    Pattern(
        "range-len",
        "Iterate over the items directly, or with zip or enumerate, instead of indexing with "
        "range(len(...))",
        "def dot(a, b):\n    s = 0\n    for i in range(len(a)):\n        s += a[i] * b[i]\n"
        "    return s",
        "def dot(a, b):\n    return sum(x * y for x, y in zip(a, b))",
        ("FURB148",),
        _range_len,
    ),
    Pattern(
        "sorted-first",
        "Use min or max instead of sorting to take the first or last item",
        "def smallest(xs):\n    return sorted(xs)[0]",
        "def smallest(xs):\n    return min(xs)",
        ("FURB192", "FURB136"),
        _sorted_first,
    ),
    Pattern(
        "regex-once",
        "Compile the regular expression once, before the loop, and reuse its bound method",
        "def digits(lines):\n    return [re.sub(r'\\D', '', s) for s in lines]",
        "def digits(lines):\n    sub = re.compile(r'\\D').sub\n"
        "    return [sub('', s) for s in lines]",
        (),
        _regex_in_loop,
    ),
    Pattern(
        "hoist-lookups",
        "Look up the methods and module functions used in the loop once, into local names, "
        "before it",
        "def roots(xs):\n    out = []\n    for x in xs:\n        out.append(math.sqrt(x))\n"
        "    return out",
        "def roots(xs):\n    sqrt = math.sqrt\n    return [sqrt(x) for x in xs]",
        (),
        _lookups_in_loop,
    ),
    Pattern(
        "builtin-reduce",
        "Replace the loop with a built-in: sum, any, all, min, max or map over a generator",
        "def has_negative(xs):\n    for x in xs:\n        if x < 0:\n            return True\n"
        "    return False",
        "def has_negative(xs):\n    return any(x < 0 for x in xs)",
        ("SIM110", "C419", "FURB118"),
        _builtin_loop,
    ),
    Pattern(
        "bisect-sorted",
        "If the data is sorted, find the position with bisect instead of scanning",
        "def position(xs, x):\n    for i, v in enumerate(xs):\n        if v >= x:\n"
        "            return i\n    return len(xs)",
        "def position(xs, x):\n    import bisect\n    return bisect.bisect_left(xs, x)",
        (),
        _sorted_scan,
    ),
    Pattern(
        "cache-recursion",
        "Memoise the pure recursion with functools.cache on an inner helper, or turn it into a "
        "loop",
        "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
        "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
        "    return a",
        (),
        _recursion,
    ),
    Pattern(
        "itertools",
        "Use itertools building blocks (combinations, product, chain, accumulate, islice) "
        "instead of hand-written nested loops",
        "def pairs(xs):\n    return [(a, b) for i, a in enumerate(xs) for b in xs[i + 1:]]",
        "def pairs(xs):\n    import itertools\n    return list(itertools.combinations(xs, 2))",
        (),
        _nested_loops,
    ),
    Pattern(
        "redundant-work",
        "Remove redundant conversions and copies: list() around what is already iterable, "
        "comprehensions that only copy, keys() in membership tests",
        "def firsts(pairs):\n    return [k for k in dict(pairs).keys()]",
        "def firsts(pairs):\n    return list(dict(pairs))",
        ("C400", "C401", "C403", "C404", "C414", "C416", "C417", "PERF101", "PERF102", "SIM118"),
        None,
    ),
)
BY_ID = {p.id: p for p in PATTERNS}
RUFF_RULES: tuple[str, ...] = tuple(code for p in PATTERNS for code in p.ruff)
"""Every ruff rule the library uses (some are preview rules: ruff runs with ``--preview``)."""
_BY_RULE = {code: p for p in PATTERNS for code in p.ruff}


# -- ruff -----------------------------------------------------------------------------------

RUFF_TIMEOUT = 20.0


def ruff_binary() -> str | None:
    """The ruff executable: next to this interpreter (the venv speedsmith runs in), else on
    PATH; None when there is none (patterns then come from the ``ast`` detectors alone)."""
    local = Path(sys.executable).parent / ("ruff.exe" if os.name == "nt" else "ruff")
    if local.is_file():
        return str(local)
    return shutil.which("ruff")


def run_ruff(code: str, rules: tuple[str, ...], *, fix: bool) -> str | None:
    """``ruff check`` on ``code`` from stdin with only ``rules``: its JSON findings, or (with
    ``fix``) the code with every fix applied, unsafe ones included. None when ruff is missing
    or fails."""
    ruff = ruff_binary()
    if ruff is None or not rules:
        return None
    command = [ruff, "check", "--select", ",".join(rules), "--preview", "--isolated"]
    command += ["--no-cache", "--stdin-filename", "speedsmith_candidate.py"]
    command += ["--fix", "--unsafe-fixes"] if fix else ["--output-format", "json", "--exit-zero"]
    command.append("-")
    try:
        done = subprocess.run(
            command,
            input=code,
            capture_output=True,
            text=True,
            timeout=RUFF_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode not in (0, 1) or (not fix and not done.stdout.strip()):
        return None
    return done.stdout


@lru_cache(maxsize=128)
def ruff_findings(code: str) -> tuple[tuple[str, int], ...]:
    """(rule code, 1-based line) of every finding of ``RUFF_RULES`` in ``code``."""
    out = run_ruff(code, RUFF_RULES, fix=False)
    if out is None:
        return ()
    try:
        findings = json.loads(out)
    except ValueError:
        return ()
    return tuple(
        (str(f.get("code")), int(f.get("location", {}).get("row", 0)))
        for f in findings
        if isinstance(f, dict)
    )


# -- detection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    pattern: Pattern
    by: str
    """``ast`` or the ruff rule code that found it."""


def module_for_ruff(function_source: str, imports: tuple[str, ...] = ()) -> tuple[str, int]:
    """The function after its module's imports (so ruff knows ``re`` is the module), and the
    number of lines before the function."""
    head = "\n".join(imports)
    prefix = head + "\n\n\n" if head else ""
    return prefix + function_source.rstrip() + "\n", prefix.count("\n")


@lru_cache(maxsize=128)
def detect(
    function_source: str, imports: tuple[str, ...] = (), use_ruff: bool = True
) -> tuple[Found, ...]:
    """The patterns found in the function (its source at column 0), in library order."""
    try:
        tree = ast.parse(function_source)
    except SyntaxError:
        return ()
    fn = next((n for n in tree.body if isinstance(n, FunctionNode)), None)
    if fn is None:
        return ()
    by: dict[str, str] = {}
    if use_ruff:
        code, offset = module_for_ruff(function_source, imports)
        for rule, line in ruff_findings(code):
            pattern = _BY_RULE.get(rule)
            if pattern is not None and line > offset:
                by.setdefault(pattern.id, rule)
    for pattern in PATTERNS:
        if pattern.id in by or pattern.detector is None:
            continue
        if pattern.detector(fn):
            by[pattern.id] = "ast"
    return tuple(Found(p, by[p.id]) for p in PATTERNS if p.id in by)


def hypotheses(function_source: str, imports: tuple[str, ...] = ()) -> list[str]:
    """The detected patterns' hypotheses, in library order."""
    return [found.pattern.hypothesis for found in detect(function_source, imports)]
