"""Isolation: find a function in Python source with tree-sitter and collect its context.

Knows nothing of LSP. Offsets are UTF-8 byte offsets into the source (``start_byte``).

Tree-sitter is error tolerant, so every entry point first checks the tree: an ``ERROR`` or
``MISSING`` node, or a block with no statements (``def f():`` followed by an unindented
line), is reported as a ``SourceError`` naming the 1-based line and column (in characters).

Dedenting (``FunctionInfo.source``) removes the definition's indentation from every line after
the first, except lines that continue a multi-line string literal: those are kept byte for byte
so the string's value is unchanged. ``speedsmith.edits`` re-indents with the same rule, so a
function put back unchanged reproduces the original text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import tree_sitter_python as tspython
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

from speedsmith.errors import SourceError, SpeedsmithError, TargetNotFound

T = TypeVar("T")


@dataclass(frozen=True)
class FunctionInfo:
    qualname: str
    """Dotted path: ``f``, ``Class.method``, ``outer.inner`` (nested), ``Outer.Inner.m``."""
    name: str
    start_byte: int
    """Start of the whole definition, decorators included (the start of its first line's text)."""
    end_byte: int
    """End of the definition's last character (no trailing newline)."""
    start_line: int
    """0-based line of ``start_byte``."""
    end_line: int
    indent: str
    """Whitespace before ``start_byte`` on its line (the definition's indentation)."""
    source: str
    """The definition's text, decorators included, dedented to column 0."""
    header: str
    """Dedented decorators plus the ``def`` line(s) up to and including the colon."""
    parameters: str
    """The parameter list text with whitespace normalised, e.g. ``(self, x: int = 1)``."""
    decorators: tuple[str, ...]
    is_async: bool
    class_name: str | None
    """Enclosing class's qualified name for methods, else None."""
    is_nested: bool
    """Defined inside another function."""


@dataclass(frozen=True)
class Context:
    """What the model needs to see besides the function itself (all source text)."""

    imports: tuple[str, ...]
    """Module-level import statements (all of them, in file order)."""
    globals_used: tuple[str, ...]
    """Module-level assignments of names the function uses (constants etc.)."""
    helpers: tuple[str, ...]
    """Module-level functions/classes defined in the same file that the function calls."""
    class_header: str | None
    """For a method: the enclosing ``class X(...):`` line plus its docstring if any."""


# --- tree-sitter setup (once per process) -------------------------------------------------

_LANGUAGE = Language(tspython.language())
_PARSER = Parser(_LANGUAGE)
_PARSER_LOCK = threading.Lock()
"""A parser is not safe to use from two threads at once; the engine runs off the event loop."""

_FUNCTIONS = Query(_LANGUAGE, "(function_definition) @function")
_PROBLEMS = Query(_LANGUAGE, "(ERROR) @error (MISSING) @missing (block) @block")
_STRINGS = Query(_LANGUAGE, "(string) @string")
_IMPORTS = Query(
    _LANGUAGE,
    "[(import_statement) (import_from_statement) (future_import_statement)] @import",
)
_MODULE_ASSIGNMENTS = Query(_LANGUAGE, "(module (expression_statement (assignment) @assignment))")
_MODULE_DEFINITIONS = Query(
    _LANGUAGE,
    "(module [(function_definition) (class_definition) (decorated_definition)] @definition)",
)
_NAMES = Query(
    _LANGUAGE,
    """
    (identifier) @name
    (attribute attribute: (identifier) @not_a_use)
    (keyword_argument name: (identifier) @not_a_use)
    (function_definition name: (identifier) @not_a_use)
    (class_definition name: (identifier) @not_a_use)
    (parameters (identifier) @not_a_use)
    (lambda_parameters (identifier) @not_a_use)
    (default_parameter name: (identifier) @not_a_use)
    (typed_parameter (identifier) @not_a_use)
    (typed_default_parameter name: (identifier) @not_a_use)
    (list_splat_pattern (identifier) @not_a_use)
    (dictionary_splat_pattern (identifier) @not_a_use)
    """,
)

_SCOPES = ("function_definition", "class_definition")
_TYPED_PARAMETERS = ("typed_parameter", "typed_default_parameter")
_MAX_LISTED = 10


# --- the parse cache: one tree per text, shared by every thread ----------------------------
#
# tree-sitter holds the interpreter lock for a whole parse (10-20 ms for a 5,000-line module,
# more on a busy machine) and for a whole query, so a parse on the engine's thread stops the
# language server's event loop as long. Texts of ``CACHE_MIN_BYTES`` or more are parsed once
# per process, whichever thread asks first (the server parses the editor's text for its code
# actions, the engine finds the same text already parsed), and a new text is parsed
# incrementally from the cached tree of the text nearest to it (``_reusable``): the edit
# between them is found by comparing their bytes (the common prefix and suffix), so a
# keystroke costs a parse of what changed, whoever made the change.

CACHED_TEXTS = 8
"""How many parsed texts the cache keeps (the most recently used)."""
CACHE_MIN_BYTES = 4096
"""Shorter texts (the model's candidates) are parsed afresh each time: they parse in well
under a millisecond, and caching them would push the modules out."""
REUSE_MIN_SHARE = 0.5
"""A cached tree is reused when at least this share of the new text is unchanged from its."""


@dataclass(eq=False)
class _Parsed:
    """One text's tree and values derived from it (``memo``: its syntax error, its functions,
    ...) that every caller shares: the tree is never edited once here. Two threads may both
    compute a missing value; either result is the same."""

    data: bytes
    tree: Tree
    memo: dict[str, Any] = field(default_factory=dict)

    def derived(self, key: str, compute: Callable[[], T]) -> T:
        try:
            return self.memo[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self.memo[key] = compute()
            return value

    def check(self) -> None:
        """Raise SourceError if the text has syntax errors (found once per text)."""
        message = self.derived("error", lambda: _syntax_error(self.data, self.tree.root_node))
        if message is not None:
            raise SourceError(message)

    def continuation_rows(self) -> frozenset[int]:
        """Every row that begins inside a multi-line string (``_continuation_rows``)."""
        return self.derived("rows", lambda: frozenset(_continuation_rows(self.tree.root_node)))

    def functions(self) -> list[Node]:
        """``_function_nodes`` of the whole tree (callers only read the list)."""
        return self.derived("functions", lambda: _function_nodes(self.tree.root_node))

    def sorted_captures(self, query: Query, name: str) -> list[Node]:
        """The whole tree's captures ``name`` of ``query``, in file order."""
        return self.derived(
            f"{id(query)}:{name}",
            lambda: sorted(
                _captures(query, self.tree.root_node).get(name, []), key=lambda n: n.start_byte
            ),
        )


_CACHE: OrderedDict[str, _Parsed] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_STATS = {"fresh": 0, "incremental": 0, "hits": 0}
"""How texts were parsed (for tests and benchmarks)."""


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (memcmp of halving slices)."""
    low, high = 0, min(len(a), len(b))
    while low < high:  # a[:low] == b[:low]; the first difference is before ``high``
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix of ``a`` and ``b``, at most ``limit``."""
    low, high = 0, min(limit, len(a), len(b))
    size_a, size_b = len(a), len(b)
    while low < high:
        middle = (low + high + 1) // 2
        if a[size_a - middle : size_a - low] == b[size_b - middle : size_b - low]:
            low = middle
        else:
            high = middle - 1
    return low


def _continues_character(data: bytes, offset: int) -> bool:
    """Whether ``offset`` falls inside a UTF-8 character (on one of its continuation bytes)."""
    return offset < len(data) and data[offset] & 0xC0 == 0x80


def _point(data: bytes, offset: int) -> tuple[int, int]:
    """tree-sitter's point of a byte offset: (row, column in bytes)."""
    return data.count(b"\n", 0, offset), offset - (data.rfind(b"\n", 0, offset) + 1)


def _edit_between(old: bytes, new: bytes) -> tuple[int, int, int] | None:
    """The one edit that turns ``old`` into ``new`` (start, old end, new end, all at character
    boundaries), or None when too little of ``new`` is unchanged to be worth reusing."""
    start = _common_prefix(old, new)
    while start > 0 and (_continues_character(old, start) or _continues_character(new, start)):
        start -= 1
    kept = _common_suffix(old, new, min(len(old), len(new)) - start)
    while kept > 0 and _continues_character(old, len(old) - kept):
        kept -= 1
    if start + kept < REUSE_MIN_SHARE * len(new):
        return None
    return start, len(old) - kept, len(new) - kept


def _reusable(data: bytes) -> tuple[_Parsed, tuple[int, int, int]] | None:
    """The cached text nearest in size to ``data`` and the edit from it, if worth reusing.
    Call with ``_CACHE_LOCK`` held."""
    best = min(_CACHE.values(), key=lambda parsed: abs(len(parsed.data) - len(data)), default=None)
    if best is None:
        return None
    edit = _edit_between(best.data, data)
    return (best, edit) if edit is not None else None


def _tree(data: bytes, base: tuple[_Parsed, tuple[int, int, int]] | None) -> Tree:
    """Parse ``data``, from ``base``'s tree when given (a copy of it, edited: cached trees are
    never changed)."""
    old_tree = None
    if base is not None:
        old, (start, old_end, new_end) = base
        old_tree = old.tree.copy()
        old_tree.edit(
            start_byte=start,
            old_end_byte=old_end,
            new_end_byte=new_end,
            start_point=_point(data, start),
            old_end_point=_point(old.data, old_end),
            new_end_point=_point(data, new_end),
        )
    with _PARSER_LOCK:
        tree = _PARSER.parse(data) if old_tree is None else _PARSER.parse(data, old_tree)
    _STATS["fresh" if old_tree is None else "incremental"] += 1
    return tree


def _parsed(source: str) -> _Parsed:
    """``source``'s tree, from the cache when it holds it (see above)."""
    data = source.encode("utf-8")
    if len(data) < CACHE_MIN_BYTES:
        return _Parsed(data, _tree(data, None))
    with _CACHE_LOCK:
        found = _CACHE.get(source)
        if found is not None:
            _CACHE.move_to_end(source)
            _STATS["hits"] += 1
            return found
        base = _reusable(data)
    # Parsed outside the lock: a thread asking for another text that is cached need not wait.
    parsed = _Parsed(data, _tree(data, base))
    with _CACHE_LOCK:
        parsed = _CACHE.setdefault(source, parsed)  # another thread's, if it was first
        _CACHE.move_to_end(source)
        while len(_CACHE) > CACHED_TEXTS:
            _CACHE.popitem(last=False)
    return parsed


def _parse(source: str) -> _Parsed:
    """Parse ``source``; raise SourceError if it has syntax errors."""
    parsed = _parsed(source)
    parsed.check()
    return parsed


def _captures(
    query: Query, node: Node, start: int | None = None, end: int | None = None
) -> dict[str, list[Node]]:
    """Run ``query`` on ``node`` (optionally within a byte range) with a fresh cursor."""
    cursor = QueryCursor(query)
    if start is not None and end is not None:
        cursor.set_byte_range(start, end)
    return cursor.captures(node)


def _text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8")


def _node_text(data: bytes, node: Node) -> str:
    return _text(data, node.start_byte, node.end_byte)


def _location(data: bytes, node: Node) -> str:
    """``line L, column C`` (1-based, column in characters) of ``node``'s start."""
    row, byte_column = node.start_point
    line_start = node.start_byte - byte_column
    column = len(data[line_start : node.start_byte].decode("utf-8", "replace"))
    return f"line {row + 1}, column {column + 1}"


def _syntax_error(data: bytes, root: Node) -> str | None:
    """The message of the first syntax error in the tree (None: there is none)."""
    captures = _captures(_PROBLEMS, root)
    problems: list[tuple[int, Node, str]] = []
    for node in captures.get("error", []):
        snippet = data[node.start_byte : node.end_byte].decode("utf-8", "replace")
        snippet = snippet.strip().split("\n", 1)[0].strip()
        if len(snippet) > 40:
            snippet = snippet[:37] + "..."
        detail = f"unexpected {snippet!r}" if snippet else "unexpected input"
        problems.append((node.start_byte, node, detail))
    for node in captures.get("missing", []):
        problems.append((node.start_byte, node, f"expected {node.type!r}"))
    for node in captures.get("block", []):
        if node.start_byte == node.end_byte:
            problems.append((node.start_byte, node, "expected an indented block"))
    if not problems and root.has_error:
        problems.append((root.start_byte, root, "invalid syntax"))
    if not problems:
        return None
    _, node, detail = min(problems, key=lambda problem: problem[0])
    return f"syntax error at {_location(data, node)}: {detail}"


def string_continuation_lines(text: str) -> frozenset[int]:
    """0-based lines of ``text`` that begin inside a multi-line string literal.

    Those lines must not be re-indented or dedented: their leading whitespace is part of the
    string's value. Works on text that does not parse too (whatever strings tree-sitter finds).
    """
    return _parsed(text).continuation_rows()


def _continuation_rows(node: Node, start: int | None = None, end: int | None = None) -> set[int]:
    rows: set[int] = set()
    for string in _captures(_STRINGS, node, start, end).get("string", []):
        first, last = string.start_point.row, string.end_point.row
        rows.update(range(first + 1, last + 1))
    return rows


def _dedent(text: str, first_row: int, indent: str, keep_rows: Set[int]) -> str:
    """Remove ``indent`` from each line of ``text`` after the first (see the module docstring).

    ``first_row`` is the row of ``text``'s first line in the rows of ``keep_rows``, the
    lines left untouched. Blank lines become empty (a ``"\\r"`` line ending is kept).
    """
    lines = text.split("\n")
    out = [lines[0]]
    for offset, line in enumerate(lines[1:], start=1):
        if first_row + offset in keep_rows:
            out.append(line)
            continue
        body, ending = (line[:-1], "\r") if line.endswith("\r") else (line, "")
        if not body.strip():
            body = ""
        elif indent and body.startswith(indent):
            body = body[len(indent) :]
        out.append(body + ending)
    return "\n".join(out)


def _span(function: Node) -> Node:
    """The node covering a definition with its decorators."""
    parent = function.parent
    if parent is not None and parent.type == "decorated_definition":
        return parent
    return function


def _name(data: bytes, definition: Node) -> str:
    name = definition.child_by_field_name("name")
    return _node_text(data, name) if name is not None else ""


def _indent(data: bytes, node: Node) -> str:
    """The whitespace before ``node`` on its line (the line's leading whitespace otherwise)."""
    line_start = node.start_byte - node.start_point.column
    prefix = _text(data, line_start, node.start_byte)
    if not prefix.strip():
        return prefix
    return prefix[: len(prefix) - len(prefix.lstrip())]


def _leaves(node: Node) -> list[Node]:
    """The tokens under ``node`` in order: strings count as one token, comments are dropped."""
    if node.type == "comment":
        return []
    if node.child_count == 0 or node.type == "string":
        return [node]
    leaves: list[Node] = []
    for child in node.children:
        leaves.extend(_leaves(child))
    return leaves


def _separator(data: bytes, previous: Node, token: Node) -> str:
    """The canonical whitespace between two adjacent parameter-list tokens."""
    before, text = _node_text(data, previous), _node_text(data, token)
    parent = token.parent.type if token.parent is not None else ""
    previous_parent = previous.parent.type if previous.parent is not None else ""
    if before in ("(", "[", "{") or text in (")", "]", "}", ","):
        return ""
    if before == ",":
        return " "
    if text == ":" and parent in _TYPED_PARAMETERS:
        return ""
    if before == ":" and previous_parent in _TYPED_PARAMETERS:
        return " "
    if "=" in (text, before):
        if "typed_default_parameter" in (parent, previous_parent):
            return " "
        if "default_parameter" in (parent, previous_parent):
            return ""
    return " " if previous.end_byte < token.start_byte else ""


def _normalize_parameters(data: bytes, parameters: Node) -> str:
    """The parameter list in one canonical spelling, whatever its layout.

    No space inside brackets or before commas, one space after commas and annotation colons,
    ``=`` bare in ``x=1`` and spaced in ``x: int = 1``, a single space wherever the source had
    any whitespace (or a comment) between other tokens, and no trailing comma.
    """
    tokens = _leaves(parameters)
    if len(tokens) >= 2 and tokens[-2].type == "," and tokens[-2].parent == parameters:
        del tokens[-2]
    parts: list[str] = []
    for index, token in enumerate(tokens):
        if index:
            parts.append(_separator(data, tokens[index - 1], token))
        parts.append(_node_text(data, token))
    return "".join(parts)


def _function_info(data: bytes, function: Node, keep_rows: Set[int]) -> FunctionInfo:
    span = _span(function)
    name = _name(data, function)
    scopes: list[tuple[str, str]] = []
    ancestor = function.parent
    while ancestor is not None:
        if ancestor.type in _SCOPES:
            scopes.append((ancestor.type, _name(data, ancestor)))
        ancestor = ancestor.parent
    scopes.reverse()
    qualname = ".".join([scope_name for _, scope_name in scopes] + [name])
    class_name = None
    if scopes and scopes[-1][0] == "class_definition":
        class_name = ".".join(scope_name for _, scope_name in scopes)
    is_nested = any(kind == "function_definition" for kind, _ in scopes)

    indent = _indent(data, span)
    first_row = span.start_point.row
    source = _dedent(_text(data, span.start_byte, span.end_byte), first_row, indent, keep_rows)
    colon_end = function.end_byte
    body = function.child_by_field_name("body")
    for child in function.children:
        if child.type == ":" and (body is None or child.end_byte <= body.start_byte):
            colon_end = child.end_byte
    header = _dedent(_text(data, span.start_byte, colon_end), first_row, indent, keep_rows)
    parameters_node = function.child_by_field_name("parameters")
    parameters = (
        _normalize_parameters(data, parameters_node) if parameters_node is not None else "()"
    )
    decorators = tuple(
        _dedent(_node_text(data, child), child.start_point.row, indent, keep_rows)
        for child in span.children
        if child.type == "decorator"
    )
    return FunctionInfo(
        qualname=qualname,
        name=name,
        start_byte=span.start_byte,
        end_byte=span.end_byte,
        start_line=span.start_point.row,
        end_line=span.end_point.row,
        indent=indent,
        source=source,
        header=header,
        parameters=parameters,
        decorators=decorators,
        is_async=any(child.type == "async" for child in function.children),
        class_name=class_name,
        is_nested=is_nested,
    )


def _function_nodes(root: Node) -> list[Node]:
    nodes = _captures(_FUNCTIONS, root).get("function", [])
    return sorted(nodes, key=lambda node: _span(node).start_byte)


@lru_cache(maxsize=16)
def _parse_functions_cached(source: str) -> tuple[FunctionInfo, ...]:
    parsed = _parse(source)
    keep_rows = parsed.continuation_rows()
    return tuple(_function_info(parsed.data, node, keep_rows) for node in parsed.functions())


def parse_functions(source: str) -> tuple[FunctionInfo, ...]:
    """Every function definition in ``source``, outer before inner, in file order.

    Raises SourceError (message with 1-based line and column) if the source has syntax errors.
    """
    return _parse_functions_cached(source)


def find_function(source: str, qualname: str) -> FunctionInfo:
    """The function named ``qualname``; raises SourceError or TargetNotFound (listing names).

    If several definitions share the name (a property's getter and setter, say), the first.
    """
    functions = parse_functions(source)
    for fn in functions:
        if fn.qualname == qualname:
            return fn
    names = list(dict.fromkeys(fn.qualname for fn in functions))
    if not names:
        raise TargetNotFound(f"no function {qualname!r}: this file defines no functions")
    listed = ", ".join(names[:_MAX_LISTED])
    more = f" (and {len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    raise TargetNotFound(f"no function {qualname!r} in this file; it defines: {listed}{more}")


def function_at(source: str, start_byte: int, end_byte: int | None = None) -> FunctionInfo | None:
    """The innermost function whose span contains the byte range (None if none).

    The span's end counts as inside (a cursor just after the last character). Raises
    SourceError if the source has syntax errors.
    """
    end = start_byte if end_byte is None else end_byte
    return _function_at_cached(source, min(start_byte, end), max(start_byte, end))


@lru_cache(maxsize=32)
def _function_at_cached(source: str, start: int, end: int) -> FunctionInfo | None:
    # Editors ask on every cursor move: build the FunctionInfo of the one function found only.
    parsed = _parse(source)
    data, tree = parsed.data, parsed.tree
    innermost: Node | None = None
    for node in parsed.functions():
        span = _span(node)
        # Spans either nest or are disjoint, and come in order of start: the last hit is inside
        # every earlier one.
        if span.start_byte <= start and end <= span.end_byte:
            innermost = node
    if innermost is None:
        return None
    span = _span(innermost)
    keep_rows = _continuation_rows(tree.root_node, span.start_byte, span.end_byte)
    return _function_info(data, innermost, keep_rows)


def _used_names(data: bytes, root: Node, start: int, end: int) -> set[str]:
    """Names the code in ``[start, end)`` reads or calls (binding sites and attributes excluded)."""
    captures = _captures(_NAMES, root, start, end)
    excluded = set(captures.get("not_a_use", []))
    return {
        _node_text(data, node)
        for node in captures.get("name", [])
        if start <= node.start_byte and node.end_byte <= end and node not in excluded
    }


def _assigned_names(data: bytes, assignment: Node) -> list[str]:
    """Targets of ``X = ...``, ``X: T = ...``, ``X = Y = ...`` and ``X, Y = ...``."""
    names: list[str] = []
    node: Node | None = assignment
    while node is not None and node.type == "assignment":
        if node.child_by_field_name("right") is None:
            break  # a bare annotation ``X: int`` assigns nothing
        left = node.child_by_field_name("left")
        if left is not None and left.type == "identifier":
            names.append(_node_text(data, left))
        elif left is not None and left.type in ("pattern_list", "tuple_pattern", "list_pattern"):
            names.extend(
                _node_text(data, child)
                for child in left.named_children
                if child.type == "identifier"
            )
        node = node.child_by_field_name("right")
    return names


def _definition_name(data: bytes, definition: Node) -> str:
    if definition.type == "decorated_definition":
        inner = definition.child_by_field_name("definition")
        return _name(data, inner) if inner is not None else ""
    return _name(data, definition)


def _inside_scope(node: Node) -> bool:
    ancestor = node.parent
    while ancestor is not None:
        if ancestor.type in _SCOPES:
            return True
        ancestor = ancestor.parent
    return False


def _class_header(data: bytes, class_node: Node, keep_rows: Set[int]) -> str:
    span = _span(class_node)
    end = class_node.end_byte
    body = class_node.child_by_field_name("body")
    for child in class_node.children:
        if child.type == ":" and (body is None or child.end_byte <= body.start_byte):
            end = child.end_byte
    if body is not None:
        statements = [child for child in body.named_children if child.type != "comment"]
        if (
            statements
            and statements[0].type == "expression_statement"
            and statements[0].named_child_count == 1
            and statements[0].named_children[0].type in ("string", "concatenated_string")
        ):
            end = statements[0].end_byte
    indent = _indent(data, span)
    return _dedent(_text(data, span.start_byte, end), span.start_point.row, indent, keep_rows)


def collect_context(source: str, fn: FunctionInfo) -> Context:
    """The module-level code ``fn`` depends on, as found in ``source``.

    ``imports``: every import not inside a function or class (including those under a
    module-level ``if``/``try``). ``globals_used``: module-level assignments whose target the
    function names. ``helpers``: module-level functions and classes the function names, except
    any definition that contains it. ``class_header``: for a method, its class's decorators,
    ``class`` line and docstring.

    Raises SourceError if the source has syntax errors, TargetNotFound if ``fn`` is not in it.
    """
    parsed = _parse(source)
    data, root = parsed.data, parsed.tree.root_node
    function = next(
        (
            node
            for node in parsed.functions()
            if _span(node).start_byte == fn.start_byte and _span(node).end_byte == fn.end_byte
        ),
        None,
    )
    if function is None:
        raise TargetNotFound(f"function {fn.qualname!r} is no longer at its place in this file")
    keep_rows = parsed.continuation_rows()
    used = _used_names(data, root, fn.start_byte, fn.end_byte)

    imports: list[str] = []
    for node in parsed.sorted_captures(_IMPORTS, "import"):
        if not _inside_scope(node):
            imports.append(
                _dedent(
                    _node_text(data, node), node.start_point.row, _indent(data, node), keep_rows
                )
            )

    globals_used: list[str] = []
    for node in parsed.sorted_captures(_MODULE_ASSIGNMENTS, "assignment"):
        if used.intersection(_assigned_names(data, node)):
            statement = node.parent if node.parent is not None else node
            globals_used.append(_node_text(data, statement))

    helpers: list[str] = []
    for node in parsed.sorted_captures(_MODULE_DEFINITIONS, "definition"):
        contains_fn = node.start_byte <= fn.start_byte and fn.end_byte <= node.end_byte
        if not contains_fn and _definition_name(data, node) in used:
            helpers.append(_node_text(data, node))

    class_header = None
    if fn.class_name is not None:
        ancestor = function.parent
        while ancestor is not None and ancestor.type != "class_definition":
            ancestor = ancestor.parent
        if ancestor is not None:
            class_header = _class_header(data, ancestor, keep_rows)

    return Context(
        imports=tuple(imports),
        globals_used=tuple(globals_used),
        helpers=tuple(helpers),
        class_header=class_header,
    )


def parse_candidate(text: str) -> FunctionInfo:
    """Parse model output that should hold exactly one function definition at column 0.

    Raises SourceError if it does not parse or holds no function. Other statements that parse
    (imports, say) are allowed; if there are several functions, the first one is returned.
    """
    parsed = _parse(text)
    data, root = parsed.data, parsed.tree.root_node
    for child in root.named_children:
        function = child
        if child.type == "decorated_definition":
            inner = child.child_by_field_name("definition")
            if inner is None:
                continue
            function = inner
        if function.type == "function_definition":
            return _function_info(data, function, parsed.continuation_rows())
    raise SourceError("no function definition at the top level")


# --- regions: whole statements of one block of a function ---------------------------------


@dataclass(frozen=True)
class Region:
    """Lines of a file to rewrite: 0-based, ``end_line`` inclusive (the editor's or the
    command line's selection; ``snap_region`` makes it whole statements of one block)."""

    start_line: int
    end_line: int


@dataclass(frozen=True)
class RegionInfo:
    """A region of a function after snapping: whole statements of one block."""

    start_line: int
    """0-based line of the file where the first statement starts."""
    end_line: int
    """0-based line of the file where the last statement ends (inclusive)."""
    first: int
    """The same lines in ``FunctionInfo.source`` (0-based): ``start_line - fn.start_line``."""
    last: int
    indent: str
    """The statements' indentation in ``FunctionInfo.source`` (the function's own removed)."""
    text: str
    """The region's lines of ``FunctionInfo.source``, with ``indent`` removed (column 0)."""
    snapped: bool
    """The selection was widened (or narrowed past blank lines and comments) to get here."""

    @property
    def lines_text(self) -> str:
        """``lines a-b`` (1-based, as editors number lines)."""
        a, b = self.start_line + 1, self.end_line + 1
        return f"line {a}" if a == b else f"lines {a}-{b}"


class RegionError(SpeedsmithError):
    """A selection that is no region of the function (the message says why)."""


def _statements(block: Node) -> list[Node]:
    return [child for child in block.named_children if child.type != "comment"]


def _inner_blocks(statement: Node) -> list[Node]:
    """The blocks of a compound statement: its body and those of its clauses
    (``elif``/``else``/``except``/``finally``/``case``), not those of nested statements."""
    found: list[Node] = []
    for child in statement.named_children:
        if child.type == "block":
            found.append(child)
        elif child.type.endswith("_clause") or child.type in ("case_clause", "block"):
            found.extend(_inner_blocks(child))
    return found


def _is_docstring(statement: Node, function: Node) -> bool:
    body = function.child_by_field_name("body")
    return (
        body is not None
        and statement.parent == body
        and _statements(body)[:1] == [statement]
        and statement.type == "expression_statement"
        and statement.named_child_count == 1
        and statement.named_children[0].type in ("string", "concatenated_string")
    )


def _function_node(parsed: _Parsed, fn: FunctionInfo) -> Node:
    for node in parsed.functions():
        if _span(node).start_byte == fn.start_byte and _span(node).end_byte == fn.end_byte:
            return node
    raise TargetNotFound(f"function {fn.qualname!r} is no longer at its place in this file")


def snap_region(source: str, fn: FunctionInfo, region: Region) -> RegionInfo | None:
    """The whole statements of one block of ``fn`` that ``region`` selects.

    A selection inside one block takes every statement it touches (a partly selected statement
    is taken whole); one that spans blocks snaps outward to the statements of the innermost
    block holding all of it (a selected ``for`` body line plus the line after the loop: the
    whole loop and that line). Blank lines and comments at its ends are left out, and so is
    the docstring. None when the selection reaches the ``def`` line or the decorators: that is
    the whole function. Raises RegionError when nothing is left (only blank lines, comments
    or the docstring) or the lines lie outside the function; SourceError if ``source`` does
    not parse.
    """
    parsed = _parse(source)
    data, tree = parsed.data, parsed.tree
    function = _function_node(parsed, fn)
    body = function.child_by_field_name("body")
    low, high = sorted((region.start_line, region.end_line))
    if high < fn.start_line or low > fn.end_line:
        raise RegionError(
            f"lines {low + 1}-{high + 1} are outside {fn.qualname} "
            f"(lines {fn.start_line + 1}-{fn.end_line + 1})"
        )
    colon = [
        c for c in function.children if c.type == ":" and body and c.end_byte <= body.start_byte
    ]
    header_row = colon[-1].end_point.row if colon else function.start_point.row
    if body is None or low <= header_row or body.start_point.row == header_row:
        return None  # the def line (or ``def f(x): return x``): the whole function
    high = min(high, fn.end_line)
    block = body
    while True:
        touched = [
            s for s in _statements(block) if s.start_point.row <= high and s.end_point.row >= low
        ]
        touched = [s for s in touched if not _is_docstring(s, function)]
        if not touched:
            raise RegionError(
                f"{_lines_text(low, high)} of {fn.qualname} hold no statement to rewrite "
                "(only blank lines, comments or the docstring)"
            )
        if len(touched) == 1:
            inner = next(
                (
                    b
                    for b in _inner_blocks(touched[0])
                    if b.start_point.row <= low
                    and high <= b.end_point.row
                    and b.start_point.row > touched[0].start_point.row
                ),
                None,
            )
            if inner is not None:
                block = inner
                continue
        break
    first_row, last_row = touched[0].start_point.row, touched[-1].end_point.row
    indent = _indent(data, touched[0])
    relative = indent[len(fn.indent) :] if indent.startswith(fn.indent) else indent
    first, last = first_row - fn.start_line, last_row - fn.start_line
    lines = fn.source.split("\n")[first : last + 1]
    keep = _continuation_rows(tree.root_node, touched[0].start_byte, touched[-1].end_byte)
    text = _dedent("\n".join(["", *lines]), first_row - 1, relative, keep)[1:]
    selected_rows = set(range(low, high + 1))
    return RegionInfo(
        start_line=first_row,
        end_line=last_row,
        first=first,
        last=last,
        indent=relative,
        text=text,
        snapped=selected_rows != set(range(first_row, last_row + 1)),
    )


def _lines_text(low: int, high: int) -> str:
    return f"line {low + 1}" if low == high else f"lines {low + 1}-{high + 1}"


def functions_in_lines(source: str, start_line: int, end_line: int) -> tuple[FunctionInfo, ...]:
    """The functions a selection of lines touches, in file order: those whose lines overlap it,
    leaving out functions nested in another one that does. Raises SourceError."""
    low, high = sorted((start_line, end_line))
    touched = [fn for fn in parse_functions(source) if fn.start_line <= high and fn.end_line >= low]
    return tuple(
        fn
        for fn in touched
        if not any(
            other is not fn and other.start_byte <= fn.start_byte and fn.end_byte <= other.end_byte
            for other in touched
        )
    )
