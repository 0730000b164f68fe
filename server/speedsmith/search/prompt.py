"""Prompts for the model, and extraction of a candidate function from its reply.

Small models break formats easily, so the reply is prefilled with an opening code fence,
generation stops at the closing fence, and the function is extracted by parsing (with
indentation normalised and trailing junk cut) rather than trusted as text.
"""

from __future__ import annotations

import ast
import builtins
import io
import itertools
import re
import textwrap
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from speedsmith.errors import SourceError
from speedsmith.isolate import Context, FunctionInfo, parse_candidate
from speedsmith.llm.base import Prompt
from speedsmith.llm.grammar import code_grammar
from speedsmith.search import patterns
from speedsmith.search.rename import restore_parameter_names
from speedsmith.search.strip import regular_indentation, splice_docstring, strip

if TYPE_CHECKING:
    from speedsmith.verify.verifier import HotLine

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


def _names(code: str) -> set[str]:
    """Every identifier in ``code`` (names and attribute names), for filtering the context."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(re.findall(r"[A-Za-z_]\w*", code))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
    return found


def _bound_by_import(statement: str) -> set[str]:
    try:
        tree = ast.parse(statement.strip())
    except SyntaxError:
        return set()
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
    return bound


def used_context(context: Context, code: str) -> tuple[str, ...]:
    """What the model is shown of the module: the constants and helpers the function uses
    (without their docstrings and comments) and only the imports that they or the function
    use. ``from __future__`` imports and star imports always stay."""
    shown = [strip(text).code for text in (*context.globals_used, *context.helpers)]
    used = _names("\n".join([code, *shown]))
    imports = [
        text
        for text in context.imports
        if "__future__" in text
        or "*" in text
        or not _bound_by_import(text)
        or _bound_by_import(text) & used
    ]
    return (*imports, *shown)


def _context_parts(context: Context, code: str = "") -> list[str]:
    parts = []
    shown = used_context(context, code)
    if shown:
        parts.append("It runs in a module that also has:\n\n" + _block("\n".join(shown)) + "\n")
    if context.class_header:
        parts.append("It is a method of:\n\n" + _block(context.class_header) + "\n")
    return parts


HINTS = 2
"""Detected patterns named in a prompt at most (``patterns.detect``)."""


def _found(fn: FunctionInfo, context: Context) -> tuple[patterns.Found, ...]:
    return patterns.detect(fn.source, context.imports)


def _code_prompt(user: str, header: str = "") -> Prompt:
    """A code prompt with the generic worked example; the reply is prefilled with the code
    fence and the function's ``header`` (decorators and ``def`` line), so the model writes
    only the body and cannot rename the function or change its parameters. The reply is
    sampled under ``grammar.code_grammar`` (brackets and strings close, the body stays
    indented; backends that cannot constrain decoding ignore it).

    Detected patterns are hints in words (``_hints``), not examples: with a pattern's own
    example function as the worked example the 135M model copied its name and parameters (7 of
    30 replies on 5 boltons functions parsed, against 16 of 30 with the generic example;
    docs/search.md)."""
    example = (f"{ASK}\n\n{_block(EXAMPLE_SLOW)}", _block(EXAMPLE_FAST))
    # Not token-healed on purpose: the tokenizer writes a body's indentation as "\n   " then
    # " return", and a prefill of three spaces would let the model's first token bring the
    # fourth; tried on 18 real functions (5 samples each) it parsed 79 of 90 against 87 with
    # four (the model then mostly writes the whole body one space deeper, which parses).
    code = f"{header}\n    " if header else ""
    return Prompt(
        system=SYSTEM,
        user=user,
        examples=(example,),
        prefill=f"{FENCE}python\n{code}",
        prefill_code=code,
        grammar=code_grammar(indented=bool(header)),
        check_lines=bool(header),
    )


def _hints(found: tuple[patterns.Found, ...], idea: str | None) -> list[str]:
    if idea or not found:
        return []
    return ["Hints: " + "; ".join(f.pattern.hypothesis for f in found[:HINTS]) + "."]


def prompt_code(source: str) -> str:
    """What the model is shown of a function: no docstring, no comments (``strip.strip``)."""
    return strip(source).code


def build_prompt(
    fn: FunctionInfo,
    context: Context,
    idea: str | None = None,
    *,
    shown: str | None = None,
    focus: str = "",
) -> Prompt:
    """Ask for a faster rewrite; ``idea`` is an optimisation hypothesis to follow. The function
    is shown without docstring and comments (or as ``shown``: the same code with marker
    comments, ``region.build_hot_prompt``, whose ``focus`` sentence follows it); detected
    patterns give the hints."""
    code = prompt_code(fn.source)
    found = _found(fn, context)
    lines = [ASK, "", *_context_parts(context, code), _block(shown or code)]
    if focus:
        lines += ["", focus]
    if idea:
        lines += ["", f"Idea: {idea}."]
    hints = _hints(found, idea)
    if hints:
        lines += ["", *hints]
    return _code_prompt("\n".join(lines), fn.header)


def build_revision_prompt(
    fn: FunctionInfo,
    context: Context,
    previous: str,
    feedback: str,
    idea: str | None = None,
    hot_lines: str = "",
    *,
    shown: str | None = None,
    focus: str = "",
) -> Prompt:
    """Ask to revise ``previous`` (an earlier candidate) given the verifier's ``feedback``;
    ``hot_lines`` (``hot_lines_text``) says where the original spends its time; ``shown`` and
    ``focus`` as in ``build_prompt``."""
    code = prompt_code(fn.source)
    found = _found(fn, context)
    lines = [ASK, "", *_context_parts(context, code), _block(shown or code), ""]
    lines += ["An earlier attempt:", "", _block(prompt_code(previous)), "", f"Result: {feedback}"]
    if hot_lines:
        lines.append(hot_lines)
    if focus:
        lines.append(focus)
    if idea:
        lines.append(f"Idea: {idea}.")
    lines += _hints(found, idea)
    lines.append("Write a corrected, faster version of the original function.")
    return _code_prompt("\n".join(lines), fn.header)


HOT_LINES = 3
"""Hot lines shown to the model at most (its context is small)..."""
HOT_LINES_CHARS = 200
"""... in this many characters (the hottest line is always shown)."""
HOT_LINES_INTRO = "Where the original spends its time: "


def hot_lines_text(lines: Sequence[HotLine], fn: FunctionInfo) -> str:
    """The original's hottest lines in one short sentence, e.g. ``Where the original spends
    its time: line 4 `if x not in seen:` 61% (12000 runs); ...``.

    ``lines`` come from ``verifier.profile`` (absolute line numbers in the file); ``fn`` is the
    function as found in that file. Line numbers are those of the function as the model sees
    it, without docstring and comments (``prompt_code``; 1 = its first line, the ``def`` line
    when undecorated). Lines under 5% are left out.
    """
    first = fn.start_line + 1  # absolute 1-based line of fn.source's first line
    last = fn.end_line + 1
    shown = strip(fn.source).lines
    parts: list[str] = []
    for line in lines:
        if not first <= line.line_number <= last or line.share < 0.05 or not line.text:
            continue
        offset = line.line_number - first
        where = shown[offset] if offset < len(shown) else None
        if where is None:
            continue
        text = line.text if len(line.text) <= 40 else line.text[:37] + "..."
        runs = "run" if line.hits == 1 else "runs"
        part = f"line {where + 1} `{text}` {line.share:.0%} ({line.hits} {runs})"
        if parts and len(HOT_LINES_INTRO + "; ".join([*parts, part]) + ".") > HOT_LINES_CHARS:
            break
        parts.append(part)
        if len(parts) >= HOT_LINES:
            break
    return HOT_LINES_INTRO + "; ".join(parts) + "." if parts else ""


HYPOTHESES_PREFILL = "1."


def build_hypotheses_prompt(
    fn: FunctionInfo, context: Context, count: int, failed: tuple[str, ...] = ()
) -> Prompt:
    """Ask for ``count`` optimisation ideas in natural language, one per numbered line."""
    lines = [
        f"List {count} different ways to make this Python function faster, one short sentence "
        "per numbered line, e.g. 'Replace the list membership test with a set.'",
        "",
        *_context_parts(context, prompt_code(fn.source)),
        _block(prompt_code(fn.source)),
    ]
    if failed:
        lines += ["", "These ideas did not work: " + "; ".join(failed) + "."]
    return Prompt(system=SYSTEM, user="\n".join(lines), prefill=HYPOTHESES_PREFILL)


def parse_hypotheses(text: str, limit: int) -> list[str]:
    """Ideas from a numbered or bulleted list (the reply after the ``1.`` prefill)."""
    ideas: list[str] = []
    seen: set[str] = set()
    for line in (HYPOTHESES_PREFILL + text).splitlines():
        idea = re.sub(r"^\s*(?:\d+[.)]|[-*\u2022])\s*", "", line).strip().rstrip(".").strip()
        idea = idea.strip("*` ")
        key = idea.lower()
        if len(idea) < 8 or len(idea) > 160 or FENCE in idea or not re.search("[a-z]", key):
            continue
        if key in seen:
            continue
        seen.add(key)
        ideas.append(idea)
        if len(ideas) >= limit:
            break
    return ideas


_FALLBACK_IDEAS: tuple[tuple[str, str], ...] = (
    # (idea, a regular expression over the source that makes it relevant)
    ("Iterate over the items directly instead of by index", r"range\(\s*len\("),
    ("Replace the list membership test with a set", r"\bnot in\b|\bin\s+\w+\s*:"),
    ("Build the string with str.join instead of repeated concatenation", r"\+=|\+ *['\"]"),
    ("Use a built-in like sum, min, max, any or all instead of the loop", r"\bfor\b"),
    ("Use a list comprehension instead of appending in a loop", r"\.append\("),
    (
        "Use a dict or collections.Counter to count instead of nested loops",
        r"\.count\(|for[^\n]*\n[^\n]*for",
    ),
    ("Move work that does not change out of the loop", r"\bfor\b|\bwhile\b"),
    ("Sort once and scan instead of comparing every pair", r"for[^\n]*\n[^\n]*for"),
)


def fallback_hypotheses(source: str) -> list[str]:
    """Generic ideas, the ones whose pattern occurs in ``source`` first."""
    relevant = [idea for idea, pattern in _FALLBACK_IDEAS if re.search(pattern, source)]
    return relevant + [idea for idea, _ in _FALLBACK_IDEAS if idea not in relevant]


def _rename_function(code: str, new: str, old: str) -> str | None:
    """``code`` with the function's name back to ``old``, and the names (not attributes) that
    call it recursively unless ``new`` is a builtin's name; None when ``old`` already occurs
    in it (the renaming would not be pure)."""
    try:
        tree = ast.parse(code)
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    if any(t.type == tokenize.NAME and t.string == old for t in tokens):
        return None
    lines = code.split("\n")
    places: set[tuple[int, int]] = set()
    for previous, token in itertools.pairwise(tokens):
        if previous.string == "def" and token.string == new:
            places.add((token.start[0] - 1, token.start[1]))
            break
    if not hasattr(builtins, new):
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == new:
                row = node.lineno - 1
                col = len(lines[row].encode()[: node.col_offset].decode(errors="ignore"))
                places.add((row, col))
    for row, col in sorted(places, reverse=True):
        lines[row] = lines[row][:col] + old + lines[row][col + len(new) :]
    return "\n".join(lines)


@dataclass(frozen=True)
class Extracted:
    source: str | None
    """The candidate function, dedented, with the original's docstring; or None."""
    error: str
    truncated: bool = False
    """The reply was cut off by the token cap before the function ended."""


def extract(
    text: str, original: FunctionInfo, hit_cap: bool = False, *, model_reply: bool = True
) -> Extracted:
    """The candidate function in ``text`` (code after the prefill), checked against the original's
    name, parameters (compared as trees; parameters that were only renamed are renamed back:
    ``rename.restore_parameter_names``), decorators and kind, with the original's docstring put
    back (``strip.splice_docstring``).

    ``hit_cap``: the generation used every token it was allowed. Then the function counts as
    complete only when a new top-level line follows it in the reply; otherwise the model was
    still writing it and the candidate is ``truncated`` (not parsed), even if a shorter prefix
    of it happens to parse.

    ``model_reply``: the model's reply (or a tool's), so a function that was only renamed is
    named back (``_rename_function``) and the original's docstring is spliced in. False for a
    user's own candidate (``speedsmith verify``): checked as written.
    """
    code = text.split(FENCE)[0].replace("\t", "    ")
    code = textwrap.dedent(code).strip("\n")
    if not code.strip():
        return Extracted(None, "empty reply", truncated=hit_cap)
    lines = code.splitlines()
    fn = None
    error = "no function definition"
    kept = 0
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
        kept = end
        break
    if hit_cap and (fn is None or not any(line[:1].strip() for line in lines[kept:])):
        return Extracted(None, "truncated: cut off at the token cap", truncated=True)
    if fn is None:
        return Extracted(None, f"does not parse: {error}")
    if fn.name != original.name:
        renamed = _rename_function(code, fn.name, original.name) if model_reply else None
        if renamed is None:
            return Extracted(None, f"renamed the function to {fn.name!r}")
        code = renamed
        fn = parse_candidate(code)
    if fn.parameters != original.parameters:
        # The same parameters written differently, or only renamed: take them as the original's.
        restored = restore_parameter_names(code, original.source)
        if restored is None:
            return Extracted(None, f"changed the parameters to {fn.parameters}")
        fn = parse_candidate(restored)  # a pure renaming of a candidate that parsed
    if fn.decorators != original.decorators or fn.is_async != original.is_async:
        return Extracted(None, "changed the decorators or async-ness")
    if not model_reply:
        return Extracted(fn.source, "")
    return Extracted(splice_docstring(regular_indentation(fn.source), original.source), "")


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
