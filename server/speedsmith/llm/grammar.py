"""Constrained decoding: the GBNF grammar a code reply is sampled under.

A small model's most common syntax errors are mechanical: a bracket closed twice or never, a
string left open, an empty body, prose in comments, or a second function after the one it was
asked for.
None of these can be repaired after the fact, and each costs a whole candidate's tokens. The
grammar below rules them out while the reply is written (llama.cpp's grammar sampler), and
allows everything else Python code can contain:

* brackets ``()``, ``[]``, ``{}`` nest and close in order (newlines allowed inside them);
* string literals (``'``, ``"``, and their triple-quoted forms, any prefix) close, with
  backslash escapes; brackets and ``#`` inside strings are text;
* a backslash outside a string only continues a line;
* no comments: the model writes code, not prose (the original's comments are not shown to it,
  and a comment was where a reply most often rambled on until the token cap);
* the first line holds code (no empty reply), and with ``indented=True`` or ``statements=True``
  it does not start with a string: a docstring the model writes is tokens spent on what the
  original's docstring replaces (``strip.splice_docstring``), and the 135M model's docstrings
  were where it most often wrote prose until the token cap;
* with ``indented=True`` (a reply prefilled with the function's header and the body's
  indentation: ``prompt._code_prompt``) every further line is blank or indented, so the model
  cannot leave the function for module-level code; the only way out is the closing code
  fence, which ends the reply (the search's stop string).

Indentation levels and Python's statement grammar are not the grammar's: it is a cheap filter,
not a parser. For a reply with ``Prompt.check_lines`` (a whole function after its prefilled
header, or a region's statements, which start at column 0) the batch engine also checks each
finished line with Python's own parser (``syntax_state``): a line after which the function can
no longer be Python, whatever follows (``[x for x in y if x, z]``, ``(a with b)``, a dedent to
no enclosing level), is taken back, its tokens and KV cells dropped, and written again, at
most ``MAX_LINE_RETRIES`` times before the reply stops there (the tokens taken back still
count). The backend applies it as
llama.cpp's own sampler does with a grammar: sample as usual, check the token, and only when
it is rejected filter the whole vocabulary and sample again (``batch.py``), so an accepted
token costs one check and the reply is the one unconstrained sampling would give wherever it
was already valid.
"""

from __future__ import annotations

import ast
import codeop
import warnings
from typing import Literal

_COMMON = r"""
item ::= [^\n()\[\]{}"'`#\\] | "\\\n" | group | str
lead ::= [^ \t\n()\[\]{}"'`#\\] | group | str
group ::= "(" inner* ")" | "[" inner* "]" | "{" inner* "}"
inner ::= item | "\n"
str ::= "'" sqc* "'" | "\"" dqc* "\"" | "'''" tsqc* "'''" | "\"\"\"" tdqc* "\"\"\""
sqc ::= [^'\\\n] | esc
dqc ::= [^"\\\n] | esc
esc ::= "\\" [^\x00]
tsqc ::= [^'\\] | esc | "'" [^'\\] | "''" [^'\\]
tdqc ::= [^"\\] | esc | "\"" [^"\\] | "\"\"" [^"\\]
end ::= "```" [^\x00]* | ""
"""

_INDENTED = r"""
root ::= first line* end
first ::= [ ]* code item* "\n" | "\n" blank* [ \t]+ code item* "\n"
code ::= [^ \t\n()\[\]{}"'`#\\] | group
blank ::= [ \t]* "\n"
line ::= [ \t] item* "\n" | "\n"
"""

_FREE = r"""
root ::= first line* end
first ::= "\n"* lead item* "\n"
line ::= item* "\n"
"""


_STATEMENTS = r"""
root ::= first line* end
first ::= "\n"* head item* "\n"
line ::= item* "\n"
"""

_PLAIN = r"""\n()\[\]{}"'`#\\"""
"""What ``item``'s character class leaves out: newline, brackets, quotes, ``#``, backslash."""

NOT_FIRST = ("def ", "class ", "@")
"""What the first line of a region's replacement may not start with: the model's habit is to
answer a region prompt with the whole function (or a class around it), which cannot replace
the region's statements."""


def _head(words: tuple[str, ...]) -> str:
    """Rules for ``head``: the first line's start, anything ``lead`` allows except a string
    and ``words`` (a trie over their letters: a rule per proper prefix, excluding the letter
    that would complete a word)."""
    rules: list[str] = []

    def node(prefix: str, name: str) -> None:
        following = sorted({w[len(prefix)] for w in words if w.startswith(prefix) and w != prefix})
        deeper = [c for c in following if prefix + c not in words]
        excluded = "".join(following) + ("" if prefix else " \\t")
        alternatives = [f"[^{excluded}{_PLAIN}]", "group"] + (["str"] if prefix else [])
        for index, char in enumerate(deeper):
            alternatives.append(f'"{char}" {name}{index}')
            node(prefix + char, f"{name}{index}")
        rules.append(f"{name} ::= " + " | ".join(alternatives))

    node("", "head")
    return "\n".join(reversed(rules))


def code_grammar(*, indented: bool, statements: bool = False) -> str:
    """The GBNF text for a code reply; ``indented``: after the first line, every line is
    blank or starts with whitespace (the reply is a function body after a prefilled header);
    otherwise the first line of code starts at column 0 (statements, checked on their own).
    ``statements`` (not ``indented``): the first line does not start with one of
    ``NOT_FIRST`` (a region's replacement, not a function)."""
    if indented:
        head = _INDENTED
    elif statements:
        head = _STATEMENTS.strip() + "\n" + _head(NOT_FIRST)
    else:
        head = _FREE
    return head.strip() + "\n" + _COMMON.strip() + "\n"


_FLAGS = (
    ast.PyCF_ONLY_AST
    | int(vars(codeop)["PyCF_ALLOW_INCOMPLETE_INPUT"])
    | int(vars(codeop)["PyCF_DONT_IMPLY_DEDENT"])
)
"""Parse only (no symbol table: ``nonlocal`` or ``break`` out of context are the tree's to
judge, as for ``ast.parse``), and tell input that could still go on from input that cannot."""

MAX_LINE_RETRIES = 2
"""How often a reply's line that cannot be Python is written again before the reply stops."""
MAX_LINE_BYTES = 240
"""A checked reply's line longer than this is taken back like one that cannot be Python: code
lines are rarely half as long (ruff's default limit is 88), and the 135M model's longest lines
were runaway expressions it kept writing until the token cap."""


def syntax_state(code: str) -> Literal["complete", "incomplete", "invalid"]:
    """Whether ``code`` (a function's source so far, ending with a newline) parses, could
    still become Python with more lines (an open block, bracket, string or continuation), or
    cannot whatever follows (``codeop``'s incomplete-input test, parse only)."""
    if code.rstrip("\n").endswith("\\"):
        return "incomplete"  # a line continuation: the statement goes on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(code, "<reply>", "exec", _FLAGS)
            return "complete"
        except (SyntaxError, ValueError, OverflowError):
            pass
        try:
            compile(code + "\n", "<reply>", "exec", _FLAGS)
            return "complete"
        except (SyntaxError, ValueError, OverflowError) as err:
            return "incomplete" if "incomplete input" in str(err) else "invalid"


__all__ = ["MAX_LINE_BYTES", "MAX_LINE_RETRIES", "code_grammar", "syntax_state"]
