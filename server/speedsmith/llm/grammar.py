"""Constrained decoding: the GBNF grammar a code reply is sampled under.

A small model's most common syntax errors are mechanical: a bracket closed twice or never, a
string left open, an empty body, prose in comments, or a second function after the one it was
asked for.
None of these can be repaired after the fact, and each costs a whole candidate's tokens. The
grammar below rules them out while the reply is written (llama.cpp's grammar sampler), and
allows everything else Python code can contain:

* brackets ``()``, ``[]``, ``{}`` nest and close in order (newlines allowed inside them);
* string literals (``'``, ``"``, and their triple-quoted forms, any prefix) close, with
  backslash escapes; brackets and ``#`` inside strings and comments are text;
* a backslash outside a string only continues a line;
* no comments: the model writes code, not prose (the original's comments are not shown to it,
  and a comment was where a reply most often rambled on until the token cap);
* the first line holds code (no empty reply);
* with ``indented=True`` (a reply prefilled with the function's header) every further line is
  blank or indented, so the model cannot leave the function for module-level code; the only
  way out is the closing code fence, which ends the reply (the search's stop string).

Indentation levels and Python's statement grammar are not checked: the grammar is a cheap
filter, not a parser (``ast`` still decides what parses). The backend applies it as
llama.cpp's own sampler does with a grammar: sample as usual, check the token, and only when
it is rejected filter the whole vocabulary and sample again (``batch.py``), so an accepted
token costs one check and the reply is the one unconstrained sampling would give wherever it
was already valid.
"""

from __future__ import annotations

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
first ::= [ ]* lead item* "\n" | "\n" blank* [ \t]+ lead item* "\n"
blank ::= [ \t]* "\n"
line ::= [ \t] item* "\n" | "\n"
"""

_FREE = r"""
root ::= first line* end
first ::= [ \n]* lead item* "\n"
line ::= item* "\n"
"""


def code_grammar(*, indented: bool) -> str:
    """The GBNF text for a code reply; ``indented``: after the first line, every line is
    blank or starts with whitespace (the reply is a function body after a prefilled header)."""
    return (_INDENTED if indented else _FREE).strip() + "\n" + _COMMON.strip() + "\n"


__all__ = ["code_grammar"]
