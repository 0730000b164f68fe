"""What the model sees and writes: code without the docstring and comments.

A small model re-types whatever it is shown: a long docstring and comments cost tokens on every
candidate and push the code past the token cap. So the prompt shows the function **stripped**
(``strip``: no docstring, no comments, no blank-line runs), the model writes only code, and the
original's docstring is put back verbatim into every candidate (``splice_docstring``) before it
is verified, so doctests, ``__doc__`` and the edit keep it byte for byte.

Comments inside the body are not put back: a rewrite changes the statements they described, and
there is no reliable place for them in new code (a comment above a loop that became a
comprehension would describe code that no longer exists). Candidates made by tools
(``search/tools.py``) edit the source in place and keep every comment.
"""

from __future__ import annotations

import ast
import io
import itertools
import tokenize
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Stripped:
    code: str
    """The function without docstring and comments (blank-line runs collapsed)."""
    docstring: tuple[str, ...]
    """The docstring's lines exactly as in the source (the first with its indentation), or ()."""
    lines: tuple[int | None, ...]
    """For each line of the source (0-based), its line in ``code`` (None: removed)."""


def _function(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def _docstring_node(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Expr | None:
    first = fn.body[0] if fn.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first
    return None


def _own_lines(node: ast.stmt, lines: list[str]) -> bool:
    """The statement starts its line and nothing follows it on its last line (no ``; x``)."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    before = lines[node.lineno - 1].encode()[: node.col_offset]
    after = lines[node.end_lineno - 1].encode()[node.end_col_offset :]
    return not before.strip() and (not after.strip() or after.strip().startswith(b"#"))


@lru_cache(maxsize=256)
def strip(source: str) -> Stripped:
    """``source`` (one function at column 0, as ``FunctionInfo.source``) without its docstring
    and comments. Source that does not parse comes back unchanged."""
    lines = source.splitlines()
    identity = tuple(range(len(lines)))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return Stripped(source, (), identity)
    drop: set[int] = set()  # 0-based lines removed entirely
    docstring: tuple[str, ...] = ()
    fn = _function(tree)
    if fn is not None:
        node = _docstring_node(fn)
        if node is not None and len(fn.body) > 1 and _own_lines(node, lines):
            assert node.end_lineno is not None
            docstring = tuple(lines[node.lineno - 1 : node.end_lineno])
            drop.update(range(node.lineno - 1, node.end_lineno))
    kept = list(lines)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        tokens = []
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        row, col = token.start[0] - 1, token.start[1]
        if row in drop:
            continue
        text = kept[row]
        if not text[:col].strip():
            drop.add(row)  # a comment-only line
        else:
            kept[row] = text[:col].rstrip()
    out: list[str] = []
    mapping: list[int | None] = []
    for index, text in enumerate(kept):
        if index in drop:
            mapping.append(None)
            continue
        blank = not text.strip()
        if blank and (not out or not out[-1].strip()):
            mapping.append(None)  # no leading blank line, no runs of blank lines
            continue
        mapping.append(len(out))
        out.append(text)
    while out and not out[-1].strip():
        out.pop()
    code = "\n".join(out)
    try:
        ast.parse(code)
    except SyntaxError:  # e.g. a backslash continuation ending in a comment: keep it all
        return Stripped(source, (), identity)
    return Stripped(code, docstring, tuple(mapping))


def _has_docstring(source: str) -> bool:
    try:
        fn = _function(ast.parse(source))
    except SyntaxError:
        return False
    return fn is not None and _docstring_node(fn) is not None


def _body_start(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.stmt:
    return fn.body[0]


def splice_docstring(candidate: str, original: str) -> str:
    """``candidate`` with the original's docstring, verbatim, as its first statement.

    A docstring the candidate wrote itself is replaced (or removed when the original has none):
    the edit changes code, not documentation. The docstring's first line takes the candidate
    body's indentation; its continuation lines are inside the string and stay byte for byte.
    Candidates whose body shares the ``def`` line (``def f(x): return x``) are returned as
    they are.
    """
    docstring = strip(original).docstring
    lines = candidate.splitlines()
    try:
        tree = ast.parse(candidate)
    except SyntaxError:
        return candidate
    fn = _function(tree)
    if fn is None:
        return candidate
    own = _docstring_node(fn)
    if own is not None and len(fn.body) > 1 and _own_lines(own, lines):
        assert own.end_lineno is not None
        del lines[own.lineno - 1 : own.end_lineno]
        tree = ast.parse("\n".join(lines))
        fn = _function(tree)
        assert fn is not None
    elif own is not None:
        return candidate  # a docstring we cannot cut cleanly: leave the candidate alone
    if not docstring:
        if _has_docstring(original):
            return candidate  # a docstring-only original: nothing to put back
        return "\n".join(lines) + ("\n" if candidate.endswith("\n") else "")
    first = _body_start(fn)
    if first.lineno == fn.lineno or not _own_lines(first, lines):
        return candidate
    body_line = lines[first.lineno - 1]
    indent = body_line[: len(body_line) - len(body_line.lstrip())]
    head = indent + docstring[0].lstrip()
    at = first.lineno - 1
    spliced = [*lines[:at], head, *docstring[1:], *lines[at:]]
    result = "\n".join(spliced) + ("\n" if candidate.endswith("\n") else "")
    try:
        ast.parse(result)
    except SyntaxError:
        return candidate
    return result


def regular_indentation(source: str, unit: int = 4) -> str:
    """``source`` (a function at column 0) with its blocks indented by ``unit`` spaces per
    level when the model used another regular step (a 5-space body, 2-space nesting); lines
    inside brackets move with their statement, lines inside strings stay byte for byte.
    Anything irregular, or that does not tokenize, is returned unchanged."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source
    widths: list[int] = []
    depth = 0
    level_of_line: dict[int, int] = {}
    string_rows: set[int] = set()
    for token in tokens:
        if token.type == tokenize.INDENT:
            depth += 1
            if len(widths) < depth:
                widths.append(len(token.string))
            elif widths[depth - 1] != len(token.string):
                return source  # the same level indented two ways
        elif token.type == tokenize.DEDENT:
            depth -= 1
        elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
            string_rows.update(range(token.start[0] + 1, token.end[0] + 1))
        row = token.start[0]
        if row not in level_of_line and token.type not in (tokenize.DEDENT, tokenize.NL):
            level_of_line[row] = depth
    wanted = [unit * (level + 1) for level in range(len(widths))]
    if widths == wanted or any(b <= a for a, b in itertools.pairwise(widths)):
        return source
    lines = source.split("\n")
    for row, line in enumerate(lines, start=1):
        level = level_of_line.get(row, 0)
        if row in string_rows or level == 0 or not line.strip():
            continue
        shift = wanted[level - 1] - widths[level - 1]
        present = len(line) - len(line.lstrip(" "))
        lines[row - 1] = " " * max(present + shift, 0) + line.lstrip(" ")
    result = "\n".join(lines)
    try:
        same = ast.dump(ast.parse(result)) == ast.dump(ast.parse(source))
    except SyntaxError:
        same = False
    return result if same else source
