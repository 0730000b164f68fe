"""Repair of a candidate that renamed the original's parameters.

Small models often rename a parameter while rewriting a function (``def join_words(words)``
comes back as ``def join_words(text)``, the name of a local variable in the original). Such a
candidate cannot replace the original, since callers may pass arguments by keyword, but the
rename is often the only thing wrong with it. ``restore_parameter_names`` renames the
parameters back, everywhere in the candidate, when that is a pure renaming: the parameter
list has the same shape (kinds, defaults, annotations), and none of the original names occurs
anywhere in the candidate, so no meaning can change. The result still goes through the whole
verifier like any other candidate.
"""

from __future__ import annotations

import ast
import io
import tokenize


def _function(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def _parameters(args: ast.arguments) -> list[tuple[str, ast.arg]]:
    """Every parameter with its kind, in order."""
    out = [("positional-only", a) for a in args.posonlyargs]
    out += [("positional", a) for a in args.args]
    if args.vararg is not None:
        out.append(("*", args.vararg))
    out += [("keyword-only", a) for a in args.kwonlyargs]
    if args.kwarg is not None:
        out.append(("**", args.kwarg))
    return out


def _dump(node: ast.AST | None) -> str:
    return "" if node is None else ast.dump(node, include_attributes=False)


def _renaming(original: ast.arguments, candidate: ast.arguments) -> dict[str, str] | None:
    """Candidate name -> original name (empty: the same list), when the two lists differ
    only in names; None when they differ in more."""
    before, after = _parameters(original), _parameters(candidate)
    if len(before) != len(after):
        return None
    if [_dump(d) for d in original.defaults] != [_dump(d) for d in candidate.defaults]:
        return None
    if [_dump(d) for d in original.kw_defaults] != [_dump(d) for d in candidate.kw_defaults]:
        return None
    mapping: dict[str, str] = {}
    for (kind, old), (new_kind, new) in zip(before, after, strict=True):
        if kind != new_kind or _dump(old.annotation) != _dump(new.annotation):
            return None
        if old.arg != new.arg:
            mapping[new.arg] = old.arg
    return mapping


def _names(source: str) -> set[str]:
    """Every identifier and keyword in ``source``."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.string for t in tokens if t.type == tokenize.NAME}


def _width(name: str) -> int:
    """Length of ``name`` in UTF-8 bytes (the unit of ``col_offset``)."""
    return len(name.encode("utf-8"))


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        self.generic_visit(node)
        node.arg = self.mapping.get(node.arg, node.arg)
        return node


def restore_parameter_names(candidate: str, original: str) -> str | None:
    """``candidate`` (source holding one function) with its parameters renamed back to those
    of ``original`` (the original function's source): ``candidate`` itself when its parameter
    list is already the same tree (quotes or spacing may differ), None when the lists differ
    in more than names or the renaming is not pure. Formatting and comments are kept."""
    try:
        tree = ast.parse(candidate)
        original_tree = ast.parse(original)
        names = _names(candidate)
    except (SyntaxError, ValueError, tokenize.TokenError):
        return None
    fn, original_fn = _function(tree), _function(original_tree)
    if fn is None or original_fn is None:
        return None
    mapping = _renaming(original_fn.args, fn.args)
    if mapping == {}:
        return candidate
    if mapping is None or names & set(mapping.values()) or names & {"global", "nonlocal"}:
        return None
    # Replace each use in the text (positions are UTF-8 byte columns), last first.
    spots: list[tuple[int, int, int, str]] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id in mapping:
            spots.append((node.lineno, node.col_offset, _width(node.id), mapping[node.id]))
        elif isinstance(node, ast.arg) and node.arg in mapping:
            spots.append((node.lineno, node.col_offset, _width(node.arg), mapping[node.arg]))
    lines = [line.encode("utf-8") for line in candidate.splitlines(keepends=True)]
    for lineno, column, length, name in sorted(spots, reverse=True):
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:column] + name.encode("utf-8") + line[column + length :]
    renamed = b"".join(lines).decode("utf-8")
    # The text edit must be exactly the renaming of the tree (f-strings and the like).
    try:
        if _dump(ast.parse(renamed)) != _dump(_Rename(mapping).visit(tree)):
            return None
    except SyntaxError:
        return None
    return renamed
