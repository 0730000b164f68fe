"""Prompts for the model, and extraction of a candidate function from its reply.

Small models break formats easily, so the reply is prefilled with an opening code fence,
generation stops at the closing fence, and the function is extracted by parsing (with
indentation normalised and trailing junk cut) rather than trusted as text.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

from speedsmith.errors import SourceError
from speedsmith.isolate import Context, FunctionInfo, parse_candidate
from speedsmith.llm.base import Prompt

FENCE = "```"
SYSTEM = (
    "You are an expert Python performance engineer. Rewrite the function to run faster: "
    "use built-ins, comprehensions, sets and dicts. Results must stay exactly the same."
)
ASK = "Make this Python function faster. Keep its name, parameters and results exactly the same."
EXAMPLE_SLOW = """def total_price(prices, qty):
    total = 0
    for i in range(len(prices)):
        total = total + prices[i] * qty[i]
    return total"""
EXAMPLE_FAST = """def total_price(prices, qty):
    return sum(p * q for p, q in zip(prices, qty))"""


def _block(code: str) -> str:
    return f"{FENCE}python\n{code.rstrip()}\n{FENCE}"


def build_prompt(fn: FunctionInfo, context: Context) -> Prompt:
    parts = []
    shown = [*context.imports, *context.globals_used, *context.helpers]
    if shown:
        parts.append("It runs in a module that also has:\n\n" + _block("\n".join(shown)) + "\n")
    if context.class_header:
        parts.append("It is a method of:\n\n" + _block(context.class_header) + "\n")
    user = "\n".join([ASK, "", *parts, _block(fn.source)])
    example = (f"{ASK}\n\n{_block(EXAMPLE_SLOW)}", _block(EXAMPLE_FAST))
    return Prompt(system=SYSTEM, user=user, examples=(example,), prefill=f"{FENCE}python\n")


@dataclass(frozen=True)
class Extracted:
    source: str | None
    """The candidate function, dedented, or None."""
    error: str


def extract(text: str, original: FunctionInfo) -> Extracted:
    """The candidate function in ``text`` (code after the prefill), checked against the original's
    name, parameters, decorators and kind."""
    code = text.split(FENCE)[0].replace("\t", "    ")
    code = textwrap.dedent(code).strip("\n")
    if not code.strip():
        return Extracted(None, "empty reply")
    lines = code.splitlines()
    fn = None
    error = "no function definition"
    # Cut trailing junk (prose, a half-written line) until what is left parses.
    for end in range(len(lines), 0, -1):
        attempt = "\n".join(lines[:end])
        try:
            fn = parse_candidate(attempt)
            ast.parse(attempt)
        except (SourceError, SyntaxError, ValueError) as err:
            error = str(err)
            fn = None
            continue
        code = attempt
        break
    if fn is None:
        return Extracted(None, f"does not parse: {error}")
    if fn.name != original.name:
        return Extracted(None, f"renamed the function to {fn.name!r}")
    if fn.parameters != original.parameters:
        return Extracted(None, f"changed the parameters to {fn.parameters}")
    if fn.decorators != original.decorators or fn.is_async != original.is_async:
        return Extracted(None, "changed the decorators or async-ness")
    return Extracted(fn.source, "")


def normalised(source: str) -> str:
    """A key equal for candidates that differ only in formatting, comments or docstrings."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)
