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
* ``manual-count``: a loop that only counts its items into a mapping created empty just before
  it (``d[k] += 1`` on a ``defaultdict(int)``, ``d[k] = d.get(k, 0) + 1``, ``if k in d``) becomes
  ``d.update(Counter(...))``;
* ``dict-comprehension``: ``d = {}`` right before a loop whose body is only ``d[k] = v``
  (optionally under one ``if``) becomes ``d = {k: v for ...}``;
* ``string-join``: ``s = ''`` before a loop that only does ``s += piece`` collects the pieces in
  a list and joins them once after the loop;
* ``minmax-inline``: ``min(a, b)`` / ``max(a, b)`` of the builtins become the conditional
  expression they evaluate (``b if b < a else a``), without the call;
* ``list-argument``: a generator expression given to ``str.join``, ``tuple``, ``sorted`` or
  ``frozenset`` (which build a sequence from it first anyway) becomes a list comprehension;
* ``cache-recursion``: a function that calls itself from two or more places runs its body in
  an inner helper memoised with ``functools.lru_cache`` for the one call;
* ``bisect-scan``: ``for i, v in enumerate(xs): if v >= x: return i`` then ``return len(xs)``
  becomes ``bisect_left(xs, x)`` (right only for sorted data: the verifier decides);
* ``format-fstring``: ``'...'.format(names)`` with a literal becomes the f-string, nested
  fields of specs included (ruff's UP032, also run, leaves those alone);
* ``combined``: all of them, one after the other (``TRANSFORMS`` order), after ruff's fixes.

At most ``MAX_TOOL_CANDIDATES``: ruff's first, then each transform that changed something,
and the last place is kept for ``combined`` when it differs from all of them.
"""

from __future__ import annotations

import ast
import re
import string
import textwrap
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

    def insert_after(self, statement: ast.stmt, text: str) -> None:
        """A line right after the statement's last line, at the statement's indentation."""
        line = statement.end_lineno
        assert line is not None
        self.inserts.append((line, self.indent_of(statement) + text))

    def replace_lines(self, first: ast.stmt, last: ast.stmt, lines: list[str]) -> None:
        """Whole lines ``first`` to ``last`` (statements) become ``lines``."""
        assert last.end_lineno is not None
        end = last.end_lineno - 1
        self.edits.append(_Edit(first.lineno - 1, 0, end, len(self.lines[end]), "\n".join(lines)))

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


def _prepared(
    source: str,
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, dict[ast.AST, ast.AST], _Source] | None:
    """What a source-level transform starts from: the function's tree, each node's parent,
    and the source to edit (None: no function parses)."""
    parsed = _parse(source)
    if parsed is None:
        return None
    fn = parsed[1]
    return fn, _parents(fn), _Source(source)


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
    prepared = _prepared(source)
    if prepared is None:
        return None
    fn, parents, out = prepared
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
    prepared = _prepared(source)
    if prepared is None:
        return None
    fn, parents, out = prepared
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


def _context_names(context: Context) -> set[str]:
    """Names the module binds at its top level, among those the context shows (imports, the
    constants the function uses, its helpers)."""
    names: set[str] = set()
    for text in (*context.imports, *context.globals_used, *context.helpers):
        try:
            tree = ast.parse(textwrap.dedent(text))
        except SyntaxError:
            continue
        for statement in tree.body:
            names |= _stored(statement)
    return names


def _builtin(name: str, fn: ast.AST, context: Context) -> bool:
    """``name`` means the builtin in the function: neither it nor the module rebinds it."""
    return name not in _stored(fn) and name not in _context_names(context)


def _simple(node: ast.expr) -> bool:
    """Evaluating it twice gives the same object and does nothing else."""
    return isinstance(node, ast.Name | ast.Constant)


def _in_scope_of(node: ast.AST, parents: dict[ast.AST, ast.AST], fn: ast.AST) -> bool:
    """``node`` is in the function's own scope (not in a comprehension, lambda or nested def)."""
    current = parents.get(node)
    while current is not None and current is not fn:
        if isinstance(current, (*COMPREHENSIONS, ast.Lambda, ast.FunctionDef, ast.ClassDef)):
            return False
        if isinstance(current, ast.AsyncFunctionDef):
            return False
        current = parents.get(current)
    return True


def _bare(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """A conditional expression can replace ``node`` without parentheses."""
    parent = parents.get(node)
    if isinstance(parent, ast.Return | ast.Assign | ast.AnnAssign | ast.Expr):
        return True
    return isinstance(parent, ast.Call) and node in parent.args


def minmax_inline(source: str, context: Context) -> str | None:
    """``min(a, b)`` / ``max(a, b)`` (two positional arguments, the builtins) become the
    conditional expression the builtin evaluates: ``b if b < a else a`` / ``b if b > a else a``
    (the first argument wins ties, as in the builtin). An argument that is not a name or a
    constant is evaluated once into a fresh local (``:=``); at most one of the two may be, so
    the arguments are still evaluated left to right; not inside comprehensions or lambdas."""
    parsed = _parse(source)
    if parsed is None:
        return None
    _tree, fn = parsed
    parents = _parents(fn)
    usable = {name for name in ("min", "max") if _builtin(name, fn, context)}
    out = _Source(source)
    taken = _all_names(fn)

    def call_of(node: ast.AST) -> ast.Call | None:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in usable
            and len(node.args) == 2
            and not node.keywords
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ):
            return node
        return None

    def convert(call: ast.Call, walrus: bool) -> str | None:
        first, second = call.args
        texts: list[str] = []
        for argument in (first, second):
            inner = call_of(argument)
            converted = None if inner is None else convert(inner, walrus)
            if inner is not None and converted is None:
                return None
            texts.append(out.segment(argument) if converted is None else f"({converted})")
        a, b = texts
        compare = "<" if call.func.id == "min" else ">"  # type: ignore[attr-defined]
        if _simple(first) and _simple(second):
            return f"{b} if {b} {compare} {a} else {a}"
        if not walrus:
            return None
        if _simple(second):
            temp = _fresh("_first", taken)
            return f"{b} if {b} {compare} ({temp} := {a}) else {temp}"
        if _simple(first):
            temp = _fresh("_second", taken)
            return f"{temp} if ({temp} := {b}) {compare} {a} else {a}"
        return None

    done: set[ast.AST] = set()
    for node in ast.walk(fn):  # breadth first: outer calls before the calls inside them
        call = call_of(node)
        if call is None or call in done:
            continue
        converted = convert(call, walrus=_in_scope_of(call, parents, fn))
        if converted is None:
            continue
        done.update(ast.walk(call))
        out.replace(call, converted if _bare(call, parents) else f"({converted})")
    return out.result()


_MATERIALISING = {"tuple", "sorted", "frozenset"}
"""Builtins that turn their first argument into a list or tuple before doing anything else."""


def list_argument(source: str, context: Context) -> str | None:
    """A generator expression given to ``str.join`` (``sep.join(x for x in xs)``), ``tuple``,
    ``sorted`` or ``frozenset`` becomes a list comprehension: they build a sequence from it
    first anyway (``join`` does so in C before joining), and a list comprehension is faster
    to run than a generator to resume."""
    parsed = _parse(source)
    if parsed is None:
        return None
    _tree, fn = parsed
    usable = {name for name in _MATERIALISING if _builtin(name, fn, context)}
    out = _Source(source)
    done: set[ast.AST] = set()
    for node in ast.walk(fn):  # breadth first: a call before the calls in its arguments
        if node in done or not (isinstance(node, ast.Call) and len(node.args) == 1):
            continue
        argument = node.args[0]
        func = node.func
        joins = isinstance(func, ast.Attribute) and func.attr == "join" and not node.keywords
        builtin = isinstance(func, ast.Name) and func.id in usable
        if not isinstance(argument, ast.GeneratorExp) or not (joins or builtin):
            continue
        inner = _generator_text(out, argument)
        if inner is None:
            continue
        done.update(ast.walk(node))
        rest = "".join(", " + out.segment(k) for k in node.keywords)
        out.replace(node, f"{out.segment(func)}([{inner}]{rest})")
    return out.result()


def _generator_text(out: _Source, generator: ast.GeneratorExp) -> str | None:
    """The generator expression's source without its parentheses (which, for the sole argument
    of a call, are the call's), or None when that is not exactly the same generator."""
    last = generator.generators[-1]
    end = last.ifs[-1] if last.ifs else last.iter
    lines = out.source.split("\n")
    first_line, last_line = generator.elt.lineno - 1, end.end_lineno - 1  # type: ignore[operator]
    chunk = "\n".join(lines[first_line : last_line + 1]).encode()
    tail = len("\n".join(lines[first_line:last_line]).encode()) + (
        1 if last_line > first_line else 0
    )
    text = chunk[generator.elt.col_offset : tail + end.end_col_offset].decode()  # type: ignore[operator]
    try:
        listcomp = ast.parse(f"[{text}]", mode="eval").body
    except SyntaxError:
        return None  # e.g. the element had parentheses of its own: they are not in its span
    same = (
        isinstance(listcomp, ast.ListComp)
        and ast.dump(listcomp.elt) == ast.dump(generator.elt)
        and [ast.dump(g) for g in listcomp.generators]
        == [ast.dump(g) for g in generator.generators]
    )
    return text if same else None


def _block_of(
    statement: ast.stmt, parents: dict[ast.AST, ast.AST]
) -> tuple[list[ast.stmt], int] | None:
    """The statement list holding ``statement`` and its index there."""
    owner = parents.get(statement)
    if owner is None:
        return None
    for field in ("body", "orelse", "finalbody"):
        block = getattr(owner, field, None)
        if isinstance(block, list) and statement in block:
            return block, block.index(statement)
    return None


def _mentions(root: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(root))


def _initialised_before(
    loop: ast.stmt, name: str, parents: dict[ast.AST, ast.AST]
) -> ast.Assign | None:
    """The plain ``name = ...`` before ``loop`` in the same block, when nothing between them
    mentions ``name``."""
    found = _block_of(loop, parents)
    if found is None:
        return None
    block, index = found
    for statement in reversed(block[:index]):
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and statement.targets[0].id == name
        ):
            return None if _mentions(statement.value, name) else statement
        if _mentions(statement, name):
            return None
    return None


def _inside_try(node: ast.AST, parents: dict[ast.AST, ast.AST], fn: ast.AST) -> bool:
    current = parents.get(node)
    while current is not None and current is not fn:
        if isinstance(current, ast.Try | ast.With):
            return True
        current = parents.get(current)
    return False


def _from_import(context: Context, module: str, name: str) -> str | None:
    """The name ``from module import name [as alias]`` binds in the module, if it does."""
    for text in context.imports:
        try:
            tree = ast.parse(text.strip())
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == module and not node.level:
                for alias in node.names:
                    if alias.name == name:
                        return alias.asname or alias.name
    return None


def _module_attribute(
    context: Context, fn: ast.AST, module: str, name: str
) -> tuple[str, str | None]:
    """How the function can name ``module.name``: the expression, and the import line to put
    in the function when the module does not import it (None when it does)."""
    stored = _stored(fn)
    imported = _from_import(context, module, name)
    if imported is not None and imported not in stored:
        return imported, None
    bound = next((b for b, m in _modules(context).items() if m == module), None)
    if bound is not None and bound not in stored:
        return f"{bound}.{name}", None
    alias = _fresh(f"_{name}", _all_names(fn))
    return alias, f"from {module} import {name} as {alias}"


def _is_defaultdict_int(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "defaultdict")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "defaultdict")
        )
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == "int"
        and not node.keywords
    )


def _is_empty_dict(node: ast.expr) -> bool:
    if isinstance(node, ast.Dict):
        return not node.keys
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "dict"
        and not node.args
        and not node.keywords
    )


def _counted_key(
    statement: ast.stmt, loop_body: list[ast.stmt]
) -> tuple[str, ast.expr, bool] | None:
    """``(mapping, key, needs_defaultdict)`` when ``statement`` counts one occurrence of ``key``:
    ``d[k] += 1`` (a defaultdict(int)), ``d[k] = d.get(k, 0) + 1``, or ``if k in d: d[k] += 1
    else: d[k] = 1`` (either way round)."""
    one = ast.dump(ast.Constant(1))

    def subscript(node: ast.AST) -> tuple[str, ast.expr] | None:
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and not isinstance(node.slice, ast.Slice)
        ):
            return node.value.id, node.slice
        return None

    if (
        isinstance(statement, ast.AugAssign)
        and isinstance(statement.op, ast.Add)
        and ast.dump(statement.value) == one
        and (target := subscript(statement.target)) is not None
    ):
        return target[0], target[1], True
    if (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and (target := subscript(statement.targets[0])) is not None
        and isinstance(statement.value, ast.BinOp)
        and isinstance(statement.value.op, ast.Add)
        and ast.dump(statement.value.right) == one
    ):
        get = statement.value.left
        name, key = target
        if (
            isinstance(get, ast.Call)
            and isinstance(get.func, ast.Attribute)
            and get.func.attr == "get"
            and isinstance(get.func.value, ast.Name)
            and get.func.value.id == name
            and len(get.args) == 2
            and not get.keywords
            and ast.dump(get.args[0]) == ast.dump(key)
            and ast.dump(get.args[1]) == ast.dump(ast.Constant(0))
        ):
            return name, key, False
    if (
        isinstance(statement, ast.If)
        and len(statement.body) == 1
        and len(statement.orelse) == 1
        and isinstance(statement.test, ast.Compare)
        and len(statement.test.ops) == 1
        and isinstance(statement.test.ops[0], ast.In | ast.NotIn)
        and isinstance(statement.test.comparators[0], ast.Name)
    ):
        name = statement.test.comparators[0].id
        key = statement.test.left
        present, absent = statement.body[0], statement.orelse[0]
        if isinstance(statement.test.ops[0], ast.NotIn):
            present, absent = absent, present
        increment = _counted_key(present, loop_body)
        first = (
            isinstance(absent, ast.Assign)
            and len(absent.targets) == 1
            and (target := subscript(absent.targets[0])) is not None
            and target[0] == name
            and ast.dump(target[1]) == ast.dump(key)
            and ast.dump(absent.value) == one
        )
        if (
            first
            and increment is not None
            and increment[0] == name
            and ast.dump(increment[1]) == ast.dump(key)
        ):
            return name, key, False
    return None


def manual_count(source: str, context: Context) -> str | None:
    """A loop whose whole body counts its items into a mapping created empty just before it
    (``d = {}`` or ``d = defaultdict(int)``, nothing in between using ``d``) becomes
    ``d.update(Counter(items))``: ``Counter`` counts in C, and updating the empty mapping from
    it gives the same keys in the same (first seen) order with the same counts. The loop's
    variables must not be used after it (the loop leaves them bound)."""
    prepared = _prepared(source)
    if prepared is None:
        return None
    fn, parents, out = prepared
    for loop in _one_statement_loops(fn):
        counted = _counted_key(loop.body[0], loop.body)
        if counted is None:
            continue
        name, key, needs_defaultdict = counted
        init = _initialised_before(loop, name, parents)
        if init is None:
            continue
        if not (
            _is_defaultdict_int(init.value)
            or (not needs_defaultdict and _is_empty_dict(init.value))
        ):
            continue
        loop_names = _loop_names(loop)
        if name in loop_names or _mentions(loop.iter, name) or _mentions(key, name):
            continue
        if _names_used_outside(fn, loop, loop_names, parents):
            continue
        counter, import_line = _module_attribute(context, fn, "collections", "Counter")
        items = out.segment(loop.iter)
        plain = isinstance(loop.target, ast.Name) and isinstance(key, ast.Name)
        if not (plain and key.id == loop.target.id):  # type: ignore[attr-defined]
            items = f"{out.segment(key)} for {out.segment(loop.target)} in {items}"
        call = f"{counter}({items})"
        lines = [] if import_line is None else [import_line]
        lines.append(f"{name}.update({call})")
        indent = out.indent_of(loop)
        out.replace_lines(loop, loop, [indent + line for line in lines])
    return out.result()


def _is_under(node: ast.AST, ancestor: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    current: ast.AST | None = node
    while current is not None:
        if current is ancestor:
            return True
        current = parents.get(current)
    return False


def _one_statement_loops(fn: ast.AST) -> Iterator[ast.For]:
    """The ``for`` loops of ``fn`` without ``else`` whose body is one statement."""
    for node in ast.walk(fn):
        if isinstance(node, ast.For) and not node.orelse and len(node.body) == 1:
            yield node


def _loop_names(loop: ast.For) -> set[str]:
    return {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}


def _names_used_outside(
    fn: ast.AST, loop: ast.For, names: set[str], parents: dict[ast.AST, ast.AST]
) -> bool:
    """Whether a name of ``names`` (the loop's variables) is used outside ``loop``: the loop
    leaves them bound, a rewrite that drops the loop would not."""
    return any(
        isinstance(n, ast.Name) and n.id in names and not _is_under(n, loop, parents)
        for n in ast.walk(fn)
    )


def string_join(source: str, context: Context) -> str | None:
    """``s = ''`` (a string literal) before a loop whose only use of ``s`` is ``s += piece``
    becomes a list of pieces: ``_s_parts = ['']``, ``_s_parts.append(piece)`` in the loop, and
    ``s = ''.join(_s_parts)`` right after it. Not when the loop reads ``s``, is inside a
    ``try`` or ``with`` (a handler could see the partial string), or nothing else follows."""
    prepared = _prepared(source)
    if prepared is None:
        return None
    fn, parents, out = prepared
    taken = _all_names(fn)
    used: set[str] = set()
    for loop in ast.walk(fn):
        if not isinstance(loop, ast.For | ast.While) or _inside_try(loop, parents, fn):
            continue
        if not _in_scope_of(loop, parents, fn) or not _insertable(loop, out, parents):
            continue
        pieces: dict[str, list[ast.AugAssign]] = {}
        for node in ast.walk(loop):
            if (
                isinstance(node, ast.AugAssign)
                and isinstance(node.op, ast.Add)
                and isinstance(node.target, ast.Name)
            ):
                pieces.setdefault(node.target.id, []).append(node)
        for name, additions in pieces.items():
            if name in used:
                continue
            mentions = [n for n in ast.walk(loop) if isinstance(n, ast.Name) and n.id == name]
            if len(mentions) != len(additions):
                continue  # read or rebound in the loop
            if any(_mentions(a.value, name) for a in additions):
                continue
            if any(not _in_scope_of(a, parents, fn) for a in additions):
                continue
            init = _initialised_before(loop, name, parents)
            if init is None or not (
                isinstance(init.value, ast.Constant) and isinstance(init.value.value, str)
            ):
                continue
            used.add(name)
            parts = _fresh(f"_{name}_parts", taken)
            empty = init.value.value == ""
            out.replace(
                init, f"{parts} = []" if empty else f"{parts} = [{out.segment(init.value)}]"
            )
            for addition in additions:
                out.replace(addition, f"{parts}.append({out.segment(addition.value)})")
            out.insert_after(loop, f"{name} = ''.join({parts})")
    return out.result()


def cache_recursion(source: str, context: Context) -> str | None:
    """A plain function that calls itself by name from two or more places (tree recursion)
    gets its body moved into an inner helper memoised with ``functools.lru_cache(maxsize=None)``
    for the duration of one call, and calls it: the recursive calls (and any other use of the
    function's name) go to the helper. Only for positional-or-keyword parameters without
    ``*args``/``**kwargs``, no decorators, no ``yield``, ``await``, ``global``, ``nonlocal`` or
    nested scopes, and no string spanning lines in the body (re-indenting would change it).
    Whether the recursion is pure and its arguments hashable is the verifier's to find out."""
    parsed = _parse(source)
    if parsed is None:
        return None
    _tree, fn = parsed
    args = fn.args
    if (
        isinstance(fn, ast.AsyncFunctionDef)
        or fn.decorator_list
        or args.posonlyargs
        or args.kwonlyargs
        or args.vararg
        or args.kwarg
        or not args.args
    ):
        return None
    anchor = _body_anchor(fn)
    if anchor is None:
        return None
    forbidden = (
        ast.Yield,
        ast.YieldFrom,
        ast.Await,
        ast.Global,
        ast.Nonlocal,
        ast.Lambda,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.ClassDef,
    )
    inner_nodes = [n for statement in fn.body for n in ast.walk(statement)]
    if any(isinstance(n, forbidden) for n in inner_nodes):
        return None
    calls = [
        n
        for n in inner_nodes
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == fn.name
    ]
    if len(calls) < 2 or any(fn.name in _stored(statement) for statement in fn.body):
        return None
    if any(not isinstance(d, ast.Constant) for d in args.defaults):
        return None  # the helper's defaults would be evaluated at every call
    out = _Source(source)
    for n in inner_nodes:
        is_string = isinstance(n, ast.JoinedStr) or (
            isinstance(n, ast.Constant) and isinstance(n.value, str | bytes)
        )
        if is_string and n.lineno >= anchor.lineno and n.lineno != n.end_lineno:  # type: ignore[attr-defined]
            return None
    helper = _fresh(f"_{fn.name}", _all_names(fn))
    for n in inner_nodes:
        if isinstance(n, ast.Name) and n.id == fn.name:
            out.replace(n, helper)
    edited = out.result()
    if edited is None:
        return None
    # The body after the docstring moves one level in, into the helper.
    lines = edited.split("\n")
    first = anchor.lineno - 1
    indent = out.indent_of(anchor)
    def_line = out.lines[fn.lineno - 1]
    unit = indent[len(def_line) - len(def_line.lstrip()) :] or "    "
    cache, import_line = _module_attribute(context, fn, "functools", "lru_cache")
    signature = ast.unparse(args)
    names = ", ".join(a.arg for a in args.args)
    moved = [(unit + line) if line.strip() else line for line in lines[first:]]
    setup = [] if import_line is None else [indent + import_line]
    setup += [
        f"{indent}@{cache}(maxsize=None)",
        f"{indent}def {helper}({signature}):",
    ]
    result = "\n".join([*lines[:first], *setup, *moved, f"{indent}return {helper}({names})"])
    try:
        ast.parse(result)
    except SyntaxError:
        return None
    return result


def bisect_scan(source: str, context: Context) -> str | None:
    """The linear search for the first position whose item reaches a bound,

    ``for i, v in enumerate(xs): if v >= x: return i`` then ``return len(xs)``, becomes
    ``return bisect_left(xs, x)`` (``v > x``: ``bisect_right``). Right only when ``xs`` is
    sorted, which nothing here can know: the verifier's recorded calls decide."""
    parsed = _parse(source)
    if parsed is None:
        return None
    _tree, fn = parsed
    if not _builtin("enumerate", fn, context) or not _builtin("len", fn, context):
        return None
    parents = _parents(fn)
    out = _Source(source)
    for loop in ast.walk(fn):
        found = _scan_parts(loop)
        if found is None or not isinstance(loop, ast.For) or not _in_scope_of(loop, parents, fn):
            continue
        sequence, bound, side, index_name, item_name = found
        block = _block_of(loop, parents)
        if block is None or block[1] + 1 >= len(block[0]):
            continue
        after = block[0][block[1] + 1]
        expected = ast.dump(ast.Call(ast.Name("len", ast.Load()), [sequence], []))
        if not (isinstance(after, ast.Return) and after.value is not None):
            continue
        if ast.dump(after.value) != expected:
            continue
        if _mentions(bound, index_name) or _mentions(bound, item_name):
            continue
        function, import_line = _module_attribute(context, fn, "bisect", f"bisect_{side}")
        indent = out.indent_of(loop)
        lines = [] if import_line is None else [indent + import_line]
        lines.append(f"{indent}return {function}({out.segment(sequence)}, {out.segment(bound)})")
        out.replace_lines(loop, after, lines)
    return out.result()


def _scan_parts(loop: ast.AST) -> tuple[ast.expr, ast.expr, str, str, str] | None:
    """(sequence, bound, 'left' or 'right', index name, item name) of the linear search."""
    if not (
        isinstance(loop, ast.For)
        and not loop.orelse
        and len(loop.body) == 1
        and isinstance(loop.iter, ast.Call)
        and isinstance(loop.iter.func, ast.Name)
        and loop.iter.func.id == "enumerate"
        and len(loop.iter.args) == 1
        and not loop.iter.keywords
        and isinstance(loop.iter.args[0], ast.Name)
        and isinstance(loop.target, ast.Tuple)
        and len(loop.target.elts) == 2
        and all(isinstance(e, ast.Name) for e in loop.target.elts)
    ):
        return None
    index_name, item_name = (e.id for e in loop.target.elts)  # type: ignore[attr-defined]
    test = loop.body[0]
    if not (
        isinstance(test, ast.If)
        and not test.orelse
        and len(test.body) == 1
        and isinstance(test.body[0], ast.Return)
        and isinstance(test.body[0].value, ast.Name)
        and test.body[0].value.id == index_name
        and isinstance(test.test, ast.Compare)
        and len(test.test.ops) == 1
    ):
        return None
    left, op, right = test.test.left, test.test.ops[0], test.test.comparators[0]
    is_item = lambda node: isinstance(node, ast.Name) and node.id == item_name  # noqa: E731
    if is_item(left) and isinstance(op, ast.GtE | ast.Gt):
        bound, side = right, "left" if isinstance(op, ast.GtE) else "right"
    elif is_item(right) and isinstance(op, ast.LtE | ast.Lt):
        bound, side = left, "left" if isinstance(op, ast.LtE) else "right"
    else:
        return None
    return loop.iter.args[0], bound, side, index_name, item_name


def _format_fields(
    template: str,
) -> list[tuple[str, str | None, str | None, str | None]] | None:
    """``string.Formatter().parse`` of a format string, nested fields of the specs included
    (as ``(literal, field, spec, conversion)``); None when it does not parse."""
    try:
        return list(string.Formatter().parse(template))
    except ValueError:
        return None


def format_fstring(source: str, context: Context) -> str | None:
    """``'...'.format(args)`` with a literal format string becomes the f-string it computes,
    nested fields in format specs included (``'{x:.{n}f}'.format(x=x, n=n)``, which ruff's
    UP032 leaves alone). Only plain field names (automatic, numbered or keyword; no ``.attr``
    or ``[key]``), arguments that are names or constants (evaluating them where the field is
    gives the same values), no ``*args``/``**kwargs``, every argument used."""
    parsed = _parse(source)
    if parsed is None:
        return None
    _tree, fn = parsed
    out = _Source(source)
    for node in ast.walk(fn):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
        ):
            continue
        literal = out.segment(node.func.value)
        if not re.fullmatch(r"[rRuU]?('|\")[^'\"\\\n]*\1", literal):
            continue  # implicit concatenation, triple quotes, escapes, bytes: leave them
        arguments = [*node.args, *(k.value for k in node.keywords)]
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            continue
        if not all(_simple(a) for a in arguments):
            continue
        converted = _fstring_of(
            node.func.value.value,
            [out.segment(a) for a in node.args],
            {k.arg: out.segment(k.value) for k in node.keywords if k.arg is not None},
            literal[0] if literal[0] in "rRuU" else "",
            literal[-1],
        )
        if converted is not None:
            out.replace(node, converted)
    return out.result()


def _fstring_of(
    template: str, positional: list[str], named: dict[str, str], prefix: str, quote: str
) -> str | None:
    used: set[str] = set()
    counter = [0]

    def field(name: str) -> str | None:
        if name == "":
            index = counter[0]
            counter[0] += 1
            if index >= len(positional):
                return None
            used.add(str(index))
            return positional[index]
        if name.isdigit():
            if int(name) >= len(positional):
                return None
            used.add(name)
            return positional[int(name)]
        if name in named:
            used.add(name)
            return named[name]
        return None

    def render(text: str, depth: int) -> str | None:
        fields = _format_fields(text)
        if fields is None:
            return None
        pieces: list[str] = []
        for literal, name, spec, conversion in fields:
            pieces.append(literal.replace("{", "{{").replace("}", "}}"))
            if name is None:
                continue
            if any(c in name for c in ".[") or depth > 1:
                return None
            expression = field(name)
            if expression is None or quote in expression or "\\" in expression:
                return None
            inner = render(spec, depth + 1) if spec else ""
            if inner is None:
                return None
            bang = f"!{conversion}" if conversion else ""
            colon = f":{inner}" if spec else ""
            pieces.append(f"{{{expression}{bang}{colon}}}")
        return "".join(pieces)

    body = render(template, 0)
    if body is None:
        return None
    if used != {str(i) for i in range(len(positional))} | set(named):
        return None  # an argument not used: .format ignores it, the f-string would drop it
    if counter[0] and any(n.isdigit() for n in used) and counter[0] != len(positional):
        return None
    text = f"{prefix.replace('u', '').replace('U', '')}f{quote}{body}{quote}"
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    return text


def dict_comprehension(source: str, context: Context) -> str | None:
    """``d = {}`` right before a loop whose whole body is ``d[key] = value`` (optionally under
    one ``if``) becomes ``d = {key: value for ... in ... if ...}``. The key or the value must be
    a name or a constant (a comprehension evaluates the key first, the assignment the value),
    ``d`` is not used in the loop otherwise, and the loop's variables are not used after it."""
    prepared = _prepared(source)
    if prepared is None:
        return None
    fn, parents, out = prepared
    for loop in _one_statement_loops(fn):
        statement: ast.stmt = loop.body[0]
        condition: ast.expr | None = None
        if isinstance(statement, ast.If) and not statement.orelse and len(statement.body) == 1:
            condition = statement.test
            statement = statement.body[0]
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Subscript)
            and isinstance(statement.targets[0].value, ast.Name)
            and not isinstance(statement.targets[0].slice, ast.Slice)
        ):
            continue
        name = statement.targets[0].value.id
        key, value = statement.targets[0].slice, statement.value
        if not (_simple(key) or _simple(value)):
            continue
        found = _block_of(loop, parents)
        if found is None or found[1] == 0:
            continue
        init = found[0][found[1] - 1]
        if not (
            isinstance(init, ast.Assign)
            and len(init.targets) == 1
            and isinstance(init.targets[0], ast.Name)
            and init.targets[0].id == name
            and _is_empty_dict(init.value)
        ):
            continue
        parts = [loop.iter, key, value] + ([condition] if condition is not None else [])
        loop_names = _loop_names(loop)
        if any(_mentions(part, name) for part in parts) or name in loop_names:
            continue
        if _names_used_outside(fn, loop, loop_names, parents):
            continue
        if any(
            isinstance(n, ast.NamedExpr | ast.Yield | ast.YieldFrom | ast.Await)
            for n in ast.walk(loop)
        ):
            continue
        test = "" if condition is None else f" if {out.segment(condition)}"
        text = (
            f"{name} = {{{out.segment(key)}: {out.segment(value)} "
            f"for {out.segment(loop.target)} in {out.segment(loop.iter)}{test}}}"
        )
        out.replace_lines(init, loop, [out.indent_of(init) + text])
    return out.result()


TRANSFORMS: dict[str, Callable[[str, Context], str | None]] = {
    "manual-count": manual_count,
    "dict-comprehension": dict_comprehension,
    "string-join": string_join,
    "minmax-inline": minmax_inline,
    "cache-recursion": cache_recursion,
    "bisect-scan": bisect_scan,
    "list-argument": list_argument,
    "format-fstring": format_fstring,
    "regex-once": regex_once,
    "set-membership": set_membership,
    "local-aliases": local_aliases,
}
"""In chaining order: the statement rewrites before the aliases that would look their new
method calls up once."""


FIX_ONLY_RULES = ("UP032",)
"""Ruff rules whose fixes are tried but that are no pattern of the library: ``str.format``
with a literal to an f-string (UP032; a nested field in a spec is ``format-fstring``'s)."""


def ruff_fixes(fn: FunctionInfo, context: Context) -> str | None:
    """The function with ruff's fixes for the library's rules (None: no change, no ruff)."""
    code, _offset = patterns.module_for_ruff(fn.source, context.imports)
    fixed = patterns.run_ruff(code, (*patterns.RUFF_RULES, *FIX_ONLY_RULES), fix=True)
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
    steps = list(_chain(fixed or fn.source, context))
    combined = steps[-1] if steps else None
    for name, transform in TRANSFORMS.items():
        if combined is not None and combined not in seen and len(made) == MAX_TOOL_CANDIDATES - 1:
            break  # the last place is the chain's: everything at once
        add(name, transform(fn.source, context))
    add("combined", combined)
    return made
