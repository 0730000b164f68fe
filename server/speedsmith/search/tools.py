"""Zero-token candidates: rewrites made without the model.

They enter the search first (``strategies.run_search``), cost no tokens, and are verified
exactly like the model's candidates: nothing here is trusted, the verifier decides. The edit
is the function only, so every rewrite stays inside it. Each is a source-level edit of the
original (comments, docstring and formatting elsewhere stay as they were):

* ``ruff``: ruff's fixes for the pattern library's rules (``patterns.RUFF_RULES``, unsafe fixes
  included) on the function after its imports; skipped when the ruff binary is missing;
* ``regex-once``: ``re.sub(CONSTANT, ...)`` (and ``match``, ``search``, ``fullmatch``,
  ``findall``, ``finditer``, ``split``, ``subn``, ``compile``) with a constant pattern inside a
  loop or comprehension becomes a bound method of a pattern compiled once at the top of the
  function (``_re_sub = re.compile(CONSTANT).sub``). Not at module level: the edit may only
  replace the function;
* ``set-membership``: ``x in [constants]`` becomes ``x in {constants}``; a name that is only
  tested for membership inside a loop and never rebound, mutated or passed on gets a set built
  once before the loop (``_vocab_set = set(vocab)``);
* ``local-aliases``: ``obj.method(...)`` and ``module.function(...)`` called inside a loop,
  where the name is bound before the loop and not rebound in it, are looked up once before the
  loop (``_out_append = out.append``);
* ``combined``: all of the above, one after the other.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from speedsmith.isolate import Context, FunctionInfo, find_function
from speedsmith.search import patterns
from speedsmith.search.patterns import COMPREHENSIONS, REGEX_FUNCTIONS

MAX_TOOL_CANDIDATES = 6


@dataclass(frozen=True)
class _Edit:
    line: int
    """0-based line of the start."""
    col: int
    """Character column of the start."""
    end_line: int
    end_col: int
    text: str


class _Source:
    """A function's source with edits at ast positions (UTF-8 byte columns)."""

    def __init__(self, source: str):
        self.source = source
        self.lines = source.split("\n")
        self.edits: list[_Edit] = []
        self.inserts: list[tuple[int, str]] = []
        """(0-based line, text): whole lines put before that line."""

    def _col(self, line: int, byte_col: int) -> int:
        return len(self.lines[line].encode()[:byte_col].decode(errors="ignore"))

    def segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.source, node)
        assert text is not None
        return text

    def replace(self, node: ast.AST, text: str) -> None:
        line = node.lineno - 1  # type: ignore[attr-defined]
        end_line = node.end_lineno - 1  # type: ignore[attr-defined]
        self.edits.append(
            _Edit(
                line,
                self._col(line, node.col_offset),  # type: ignore[attr-defined]
                end_line,
                self._col(end_line, node.end_col_offset),  # type: ignore[attr-defined]
                text,
            )
        )

    def indent_of(self, statement: ast.stmt) -> str:
        text = self.lines[statement.lineno - 1]
        return text[: len(text) - len(text.lstrip())]

    def insert_before(self, statement: ast.stmt, text: str) -> None:
        self.inserts.append((statement.lineno - 1, self.indent_of(statement) + text))

    def result(self) -> str | None:
        """The edited source, or None when nothing changed or it does not parse."""
        if not self.edits and not self.inserts:
            return None
        lines = list(self.lines)
        spans = sorted(self.edits, key=lambda e: (e.line, e.col), reverse=True)
        for earlier, later in zip(spans[1:], spans, strict=False):
            if (earlier.end_line, earlier.end_col) > (later.line, later.col):
                return None  # overlapping edits
        # Whole lines first, bottom-up (lines put before the same line keep the order they were
        # added in), then the edits, bottom-up, moved down by the lines put above them.
        order = sorted(enumerate(self.inserts), key=lambda item: (item[1][0], item[0]))
        for _index, (line, text) in reversed(order):
            lines.insert(line, text)
        for edit in spans:
            shift = sum(line <= edit.line for line, _text in self.inserts)
            first, last = edit.line + shift, edit.end_line + shift
            head = lines[first][: edit.col]
            tail = lines[last][edit.end_col :]
            lines[first : last + 1] = (head + edit.text + tail).split("\n")
        result = "\n".join(lines)
        try:
            ast.parse(result)
        except SyntaxError:
            return None
        return result if result != self.source else None


def _parse(source: str) -> tuple[ast.Module, ast.FunctionDef | ast.AsyncFunctionDef] | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    return (tree, fn) if fn is not None else None


def _parents(root: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}


def _statement_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.stmt | None:
    while node in parents and not isinstance(node, ast.stmt):
        node = parents[node]
    return node if isinstance(node, ast.stmt) else None


def _outer_loop(node: ast.AST, parents: dict[ast.AST, ast.AST], fn: ast.AST) -> ast.stmt | None:
    """The outermost loop statement (or statement holding a comprehension) that runs ``node``
    once per iteration; None when ``node`` is not inside one."""
    found: ast.stmt | None = None
    child = node
    current = parents.get(node)
    while current is not None and current is not fn:
        runs_per_iteration = False
        if isinstance(current, ast.For | ast.AsyncFor):
            runs_per_iteration = child is not current.iter and child is not current.target
        elif isinstance(current, ast.While):
            runs_per_iteration = True
        elif isinstance(current, COMPREHENSIONS):
            first = current.generators[0]
            runs_per_iteration = child is not first
        elif isinstance(current, ast.comprehension):
            runs_per_iteration = child is not current.iter or _is_later_generator(current, parents)
        if runs_per_iteration:
            found = _statement_of(current, parents)
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            return None  # a nested scope: leave it alone
        child, current = current, parents.get(current)
    return found


def _is_later_generator(generator: ast.comprehension, parents: dict[ast.AST, ast.AST]) -> bool:
    owner = parents.get(generator)
    return isinstance(owner, COMPREHENSIONS) and owner.generators[0] is not generator


def _stored(root: ast.AST) -> set[str]:
    """Names bound, deleted or declared global/nonlocal anywhere under ``root``."""
    names: set[str] = set()
    for node in ast.walk(root):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _all_names(root: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(root) if isinstance(n, ast.Name)} | {
        a.arg for a in ast.walk(root) if isinstance(a, ast.arg)
    }


def _fresh(base: str, taken: set[str]) -> str:
    name = base
    number = 2
    while name in taken:
        name = f"{base}{number}"
        number += 1
    taken.add(name)
    return name


def _modules(context: Context) -> dict[str, str]:
    """Names bound to modules by the module's plain imports: {bound name: module}."""
    bound: dict[str, str] = {}
    for text in context.imports:
        try:
            tree = ast.parse(text.strip())
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
    return bound


def _body_anchor(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.stmt | None:
    """The statement to put function-level setup before: the first after the docstring."""
    body = fn.body
    first = body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        if len(body) == 1:
            return None
        first = body[1]
    return None if first.lineno == fn.lineno else first


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = fn.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return set(names)


# -- transforms -----------------------------------------------------------------------------


def _static_flags(node: ast.AST, re_name: str) -> bool:
    """``re.I``, ``re.I | re.M``, an int: flags known before the function runs."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == re_name
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _static_flags(node.left, re_name) and _static_flags(node.right, re_name)
    return False


_MAX_ARGS = {"split": 3, "sub": 4, "subn": 4, "compile": 1}
"""Positional arguments up to (not including) ``flags``; the rest take 2 (pattern, string)."""


def regex_once(source: str, context: Context) -> str | None:
    parsed = _parse(source)
    modules = _modules(context)
    re_name = next((name for name, module in modules.items() if module == "re"), None)
    if parsed is None or re_name is None:
        return None
    _tree, fn = parsed
    if re_name in _stored(fn):
        return None
    anchor = _body_anchor(fn)
    if anchor is None:
        return None
    parents = _parents(fn)
    out = _Source(source)
    taken = _all_names(fn)
    hoisted: dict[tuple[str, str, str], str] = {}
    setup: list[str] = []
    for node in ast.walk(fn):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == re_name
            and node.func.attr in REGEX_FUNCTIONS | {"compile"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str | bytes)
            and not any(isinstance(a, ast.Starred) for a in node.args)
            and all(k.arg is not None for k in node.keywords)
        ):
            continue
        if _outer_loop(node, parents, fn) is None:
            continue
        attr = node.func.attr
        if len(node.args) > _MAX_ARGS.get(attr, 2):
            continue  # flags given positionally
        flags = [k for k in node.keywords if k.arg == "flags"]
        if flags and not _static_flags(flags[0].value, re_name):
            continue
        pattern = out.segment(node.args[0])
        flag_text = out.segment(flags[0].value) if flags else ""
        key = (attr, pattern, flag_text)
        if key not in hoisted:
            compiled = f"{re_name}.compile({pattern}{', ' + flag_text if flag_text else ''})"
            name = _fresh(f"_re_{attr}", taken)
            hoisted[key] = name
            setup.append(f"{name} = {compiled}" + ("" if attr == "compile" else f".{attr}"))
        name = hoisted[key]
        if attr == "compile":
            out.replace(node, name)
            continue
        rest = [out.segment(a) for a in node.args[1:]]
        rest += [f"{k.arg}={out.segment(k.value)}" for k in node.keywords if k.arg != "flags"]
        out.replace(node, f"{name}({', '.join(rest)})")
    for line in setup:
        out.insert_before(anchor, line)
    return out.result()


_CONSTANT_TYPES = (str, bytes, int, float, bool, type(None))


def set_membership(source: str, context: Context) -> str | None:
    parsed = _parse(source)
    if parsed is None:
        return None
    _tree, fn = parsed
    parents = _parents(fn)
    out = _Source(source)
    stored = _stored(fn)
    taken = _all_names(fn)
    by_name: dict[str, list[ast.Name]] = {}
    for node in ast.walk(fn):
        if not isinstance(node, ast.Compare):
            continue
        for op, right in zip(node.ops, node.comparators, strict=True):
            if not isinstance(op, ast.In | ast.NotIn):
                continue
            if (
                isinstance(right, ast.List | ast.Tuple)
                and len(right.elts) > 1
                and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, _CONSTANT_TYPES)
                    for e in right.elts
                )
            ):
                out.replace(right, "{" + ", ".join(out.segment(e) for e in right.elts) + "}")
            elif (
                isinstance(right, ast.Name)
                and right.id not in stored
                and _outer_loop(node, parents, fn) is not None
            ):
                by_name.setdefault(right.id, []).append(right)
    # A name only ever used as the right side of membership tests in loops (never called on,
    # indexed, iterated or passed on) gets one set before the outermost loop using it.
    for name, uses in by_name.items():
        loads = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id == name]
        if len(loads) != len(uses):
            continue
        loops = {_outer_loop(use, parents, fn) for use in uses}
        if len(loops) != 1:
            continue
        (loop,) = loops
        assert loop is not None
        if not _insertable(loop, out, parents):
            continue
        alias = _fresh(f"_{name}_set", taken)
        out.insert_before(loop, f"{alias} = set({name})")
        for use in uses:
            out.replace(use, alias)
    return out.result()


def _insertable(statement: ast.stmt, out: _Source, parents: dict[ast.AST, ast.AST]) -> bool:
    """A line can go right before the statement (not an ``elif``, not after ``;``)."""
    text = out.lines[statement.lineno - 1]
    prefix = text.encode()[: statement.col_offset]
    return not prefix.strip() and not text.lstrip().startswith("elif")


def local_aliases(source: str, context: Context) -> str | None:
    parsed = _parse(source)
    if parsed is None:
        return None
    _tree, fn = parsed
    parents = _parents(fn)
    out = _Source(source)
    taken = _all_names(fn)
    known = _parameters(fn) | set(_modules(context))
    bound_at: dict[str, int] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound_at[node.id] = min(bound_at.get(node.id, node.lineno), node.lineno)
    aliases: dict[tuple[ast.stmt, str, str], str] = {}
    for node in ast.walk(fn):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            continue
        owner, attr = node.func.value.id, node.func.attr
        loop = _outer_loop(node, parents, fn)
        if loop is None or not _insertable(loop, out, parents):
            continue
        if owner in _stored(loop) or _attribute_stored(loop, owner, attr):
            continue
        before = owner in known or bound_at.get(owner, loop.lineno) < loop.lineno
        if not before:
            continue
        key = (loop, owner, attr)
        if key not in aliases:
            aliases[key] = _fresh(f"_{owner}_{attr}", taken)
            out.insert_before(loop, f"{aliases[key]} = {owner}.{attr}")
        out.replace(node.func, aliases[key])
    return out.result()


def _attribute_stored(root: ast.AST, owner: str, attr: str) -> bool:
    return any(
        isinstance(node, ast.Attribute)
        and not isinstance(node.ctx, ast.Load)
        and isinstance(node.value, ast.Name)
        and node.value.id == owner
        and node.attr == attr
        for node in ast.walk(root)
    )


TRANSFORMS: dict[str, Callable[[str, Context], str | None]] = {
    "regex-once": regex_once,
    "set-membership": set_membership,
    "local-aliases": local_aliases,
}


def ruff_fixes(fn: FunctionInfo, context: Context) -> str | None:
    """The function with ruff's fixes for the library's rules (None: no change, no ruff)."""
    code, _offset = patterns.module_for_ruff(fn.source, context.imports)
    fixed = patterns.run_ruff(code, patterns.RUFF_RULES, fix=True)
    if fixed is None or fixed == code:
        return None
    try:
        return find_function(fixed, fn.name).source
    except Exception:  # ruff's output is not trusted: no function, no candidate
        return None


def _chain(source: str, context: Context) -> Iterator[str]:
    current = source
    for transform in TRANSFORMS.values():
        changed = transform(current, context)
        if changed is not None:
            current = changed
            yield current


def tool_candidates(fn: FunctionInfo, context: Context) -> list[tuple[str, str]]:
    """``(tool, function source)`` rewrites of the function made without the model, distinct,
    at most ``MAX_TOOL_CANDIDATES``; the first is the one most likely to help (ruff's)."""
    if fn.is_async:
        return []
    made: list[tuple[str, str]] = []
    seen = {fn.source}

    def add(tool: str, source: str | None) -> None:
        if source is not None and source not in seen and len(made) < MAX_TOOL_CANDIDATES:
            seen.add(source)
            made.append((tool, source))

    fixed = ruff_fixes(fn, context)
    add("ruff", fixed)
    for name, transform in TRANSFORMS.items():
        add(name, transform(fn.source, context))
    steps = list(_chain(fixed or fn.source, context))
    if steps:
        add("combined", steps[-1])
    return made
