"""Region rewrites: the model rewrites only some statements of a function.

A region (``isolate.RegionInfo``: whole statements of one block, found by ``snap_region``) is
shown to the model inside its function, between two marker comments, and again on its own;
the model writes only the region's replacement, statements at column 0 (a grammar that does
not let the first line start a ``def``, ``class``, decorator or string, each line checked
with Python's parser: ``llm/grammar.py``). The candidate that is verified is the whole
function with the region's lines replaced (``splice``): the replacement re-indented to the
region's indentation, every other line of the function byte for byte. Verification does not
change: the whole function's recorded calls, equivalence and timing.

Line numbers here are 0-based lines of ``FunctionInfo.source`` (``RegionInfo.first`` and
``last``, inclusive).

**Hot regions** (``hot_region``): where the profile of the original over its recorded calls
(``verifier.profile``) finds a strict part of the function that takes most of its time, the
search makes **hot-region proposals**, a kind of its own next to plain whole-function rewrites
(``core.Search.proposal_region``): the function shown with that region between
``HOT_MARKERS``, ``HOT_FOCUS`` asking to speed it up, and the whole function written after
its prefilled header like any whole-function rewrite. Asked for the region alone, the 135M
model mostly wrote the whole function anyway, with its own header (changed parameters,
truncated re-typed signatures): 19 of 35 seeded replies on 7 real hot regions parsed, against
about 98% for whole-function prompts with the header prefilled (docs/search.md).
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence

from speedsmith.errors import SpeedsmithError
from speedsmith.isolate import (
    Context,
    FunctionInfo,
    Region,
    RegionInfo,
    snap_region,
    string_continuation_lines,
)
from speedsmith.llm.base import Prompt
from speedsmith.llm.grammar import code_grammar
from speedsmith.search import prompt as whole
from speedsmith.search.prompt import FENCE, SYSTEM, Extracted, _block, _context_parts
from speedsmith.search.strip import strip

START_MARKER = "# >>> rewrite from here"
END_MARKER = "# <<< to here"
ASK_REGION = (
    "Make the marked lines of this Python function faster. The code before and after them "
    "stays as it is, so they must leave every variable the later code uses with the same value."
)
EXAMPLE_FUNCTION = f"""def total_price(prices, qty):
    {START_MARKER}
    total = 0
    for i in range(len(prices)):
        total = total + prices[i] * qty[i]
    {END_MARKER}
    return total"""
EXAMPLE_REGION = """total = 0
for i in range(len(prices)):
    total = total + prices[i] * qty[i]"""
EXAMPLE_FAST = "total = sum(p * q for p, q in zip(prices, qty))"
WRITE = "Write only the new code for the marked lines:"
HOT_MARKERS = ("# >>> slow part", "# <<< end of slow part")
HOT_FOCUS = "Most of the time is spent in the marked lines: make them faster."
HOT_REGION_PART = 0.5
"""A hot region is proposed only when its code is less than this part of the function body's
(lines without docstring, comments or blank lines): where it is not, a whole-function rewrite
writes about as much and can change more."""
HOT_REGION_MIN_BODY = 8
"""...and only in a function whose body has at least this many code lines: a shorter one is
cheaper to rewrite whole than to explain a region of (and the small examples' seeded runs,
the README's and ``benchmarks/easy``, stay what they were)."""


def splice(function_source: str, region: RegionInfo, replacement: str) -> str:
    """``function_source`` with its lines ``region.first..last`` replaced by ``replacement``
    (code at column 0), re-indented to ``region.indent``. Blank lines stay empty and lines that
    continue a multi-line string keep their whitespace (it is the string's value)."""
    lines = function_source.split("\n")
    text = replacement.replace("\r\n", "\n").strip("\n")
    keep = string_continuation_lines(text)
    new = [
        line if index in keep else (region.indent + line if line.strip() else "")
        for index, line in enumerate(text.split("\n"))
    ]
    return "\n".join([*lines[: region.first], *new, *lines[region.last + 1 :]])


def replacement_of(candidate: str, function_source: str, region: RegionInfo) -> str | None:
    """The region's new code (column 0) in ``candidate``, a spliced function (``splice``);
    None when ``candidate`` does not keep the lines around the region."""
    old = function_source.split("\n")
    lines = candidate.split("\n")
    after = len(old) - region.last - 1
    if lines[: region.first] != old[: region.first] or (
        after and lines[len(lines) - after :] != old[region.last + 1 :]
    ):
        return None
    middle = lines[region.first : len(lines) - after]
    keep = string_continuation_lines("\n".join(middle))
    return "\n".join(
        line if index in keep or not line.startswith(region.indent) else line[len(region.indent) :]
        for index, line in enumerate(middle)
    )


def shown_function(
    fn: FunctionInfo, region: RegionInfo, markers: tuple[str, str] = (START_MARKER, END_MARKER)
) -> str:
    """The function as the model sees it (no docstring, no comments: ``strip.strip``) with the
    region between the two ``markers`` comments, at the region's indentation."""
    stripped = strip(fn.source)
    shown = stripped.code.split("\n")
    mapped = [line for line in stripped.lines[region.first : region.last + 1] if line is not None]
    if not mapped:  # cannot happen for a region of statements; show it unmarked
        return stripped.code
    first, last = min(mapped), max(mapped)
    return "\n".join(
        [
            *shown[:first],
            region.indent + markers[0],
            *shown[first : last + 1],
            region.indent + markers[1],
            *shown[last + 1 :],
        ]
    )


def region_code(region: RegionInfo) -> str:
    """The region's code as the model is shown it on its own (no comments)."""
    return strip(region.text).code


def _region_prompt(user: str) -> Prompt:
    example = (
        f"{ASK_REGION}\n\n{_block(EXAMPLE_FUNCTION)}\n\nThe marked lines:\n\n"
        f"{_block(EXAMPLE_REGION)}\n\n{WRITE}",
        _block(EXAMPLE_FAST),
    )
    return Prompt(
        system=SYSTEM,
        user=user,
        examples=(example,),
        prefill=f"{FENCE}python\n",
        prefill_code="",
        grammar=code_grammar(indented=False, statements=True),  # at column 0, not a def
        check_lines=True,
    )


def build_region_prompt(
    fn: FunctionInfo, context: Context, region: RegionInfo, idea: str | None = None
) -> Prompt:
    """Ask for a faster replacement of the region's statements only."""
    code = strip(fn.source).code
    lines = [ASK_REGION, "", *_context_parts(context, code), _block(shown_function(fn, region))]
    lines += ["", "The marked lines:", "", _block(region_code(region))]
    if idea:
        lines += ["", f"Idea: {idea}."]
    lines += ["", WRITE]
    return _region_prompt("\n".join(lines))


def build_region_revision_prompt(
    fn: FunctionInfo,
    context: Context,
    region: RegionInfo,
    previous: str,
    feedback: str,
    idea: str | None = None,
    hot_lines: str = "",
) -> Prompt:
    """Ask to revise an earlier replacement of the region; ``previous`` is the earlier
    candidate (a spliced function) or, when it did not parse, the reply as written."""
    code = strip(fn.source).code
    earlier = replacement_of(previous, fn.source, region)
    shown_earlier = strip(earlier).code if earlier is not None else previous
    lines = [ASK_REGION, "", *_context_parts(context, code), _block(shown_function(fn, region))]
    lines += ["", "The marked lines:", "", _block(region_code(region)), ""]
    lines += ["An earlier rewrite of them:", "", _block(shown_earlier), "", f"Result: {feedback}"]
    if hot_lines:
        lines.append(hot_lines)
    if idea:
        lines.append(f"Idea: {idea}.")
    lines += ["", "Write a corrected, faster version of only the marked lines:"]
    return _region_prompt("\n".join(lines))


def build_prompt(
    fn: FunctionInfo,
    context: Context,
    idea: str | None = None,
    region: RegionInfo | None = None,
    hot_region: RegionInfo | None = None,
) -> Prompt:
    """What the search strategies call: ``build_region_prompt`` for the search's own
    ``region`` (a selection), a whole-function prompt with ``hot_region`` marked
    (``HOT_MARKERS``, ``HOT_FOCUS``) for a hot-region proposal, else ``prompt.build_prompt``."""
    if region is not None:
        return build_region_prompt(fn, context, region, idea=idea)
    if hot_region is not None:
        return whole.build_prompt(
            fn,
            context,
            idea=idea,
            shown=shown_function(fn, hot_region, HOT_MARKERS),
            focus=HOT_FOCUS,
        )
    return whole.build_prompt(fn, context, idea=idea)


def build_revision_prompt(
    fn: FunctionInfo,
    context: Context,
    previous: str,
    feedback: str,
    idea: str | None = None,
    hot_lines: str = "",
    region: RegionInfo | None = None,
    hot_region: RegionInfo | None = None,
) -> Prompt:
    """``build_prompt``'s three kinds, revising ``previous``."""
    if region is not None:
        return build_region_revision_prompt(
            fn, context, region, previous, feedback, idea=idea, hot_lines=hot_lines
        )
    shown = None if hot_region is None else shown_function(fn, hot_region, HOT_MARKERS)
    return whole.build_revision_prompt(
        fn,
        context,
        previous,
        feedback,
        idea=idea,
        hot_lines=hot_lines,
        shown=shown,
        focus=HOT_FOCUS if hot_region is not None else "",
    )


def rewrites_whole_function(code: str, fn: FunctionInfo) -> bool:
    """Whether a reply to a region prompt is the whole function instead (its ``def`` line or
    a decorator first)."""
    first = next((line for line in code.splitlines() if line.strip()), "")
    return first.lstrip().startswith((f"def {fn.name}(", f"async def {fn.name}(", "@"))


def extract_region(
    text: str, fn: FunctionInfo, region: RegionInfo, hit_cap: bool = False
) -> Extracted:
    """The candidate function for a reply that rewrites ``region``: the reply's statements
    (trailing junk cut until the spliced function parses) spliced into the function.

    ``hit_cap`` as in ``prompt.extract``: a reply that used every token it was allowed is
    complete only when a line at column 0 follows the code that parses; otherwise it is
    ``truncated``. A reply that rewrote the whole function is rejected: the region's
    surroundings must stay verbatim.
    """
    code = textwrap.dedent(text.split(FENCE)[0].replace("\t", "    ")).strip("\n")
    if not code.strip():
        return Extracted(None, "empty reply", truncated=hit_cap)
    if rewrites_whole_function(code, fn):
        return Extracted(None, "rewrote the whole function, not the marked lines")
    lines = code.splitlines()
    error = "no statements"
    for end in range(len(lines), 0, -1):
        statements = "\n".join(lines[:end])
        candidate = splice(fn.source, region, statements)
        try:
            ast.parse(candidate)
        except (SyntaxError, ValueError) as err:
            error = str(err)
            continue
        if hit_cap and not any(line[:1].strip() for line in lines[end:]):
            break
        return Extracted(candidate, "")
    if hit_cap:
        return Extracted(None, "truncated: cut off at the token cap", truncated=True)
    return Extracted(None, f"does not parse: {error}")


def _code_lines(stripped_lines: Sequence[int | None], code: list[str], rows: range) -> int:
    """Non-blank lines of the stripped code that the source lines ``rows`` became."""
    return len(
        {
            where
            for row in rows
            if row < len(stripped_lines)
            and (where := stripped_lines[row]) is not None
            and code[where].strip()
        }
    )


def hot_region(
    source: str, fn: FunctionInfo, regions: Sequence[tuple[int, int]]
) -> tuple[int, RegionInfo] | None:
    """The hot region to propose rewrites of, and its index in ``regions``: the first of the
    profile's hot regions (``verifier.Profile.regions``, outermost first, as 0-based first and
    last lines of ``source``) that snaps to whole statements of one block (``snap_region``),
    is a strict part of the function, and has less than ``HOT_REGION_PART`` of the body's code
    lines. None when none does (the time is spread over the function, or the hot part is most
    of it), or when the body has fewer than ``HOT_REGION_MIN_BODY`` code lines."""
    stripped = strip(fn.source)
    code = stripped.code.split("\n")
    header = fn.header.count("\n") + 1
    body = _code_lines(stripped.lines, code, range(header, len(fn.source.split("\n"))))
    if body < HOT_REGION_MIN_BODY:
        return None
    for index, (start, end) in enumerate(regions):
        try:
            info = snap_region(source, fn, Region(start, end))
        except SpeedsmithError:
            continue
        if info is None:
            continue
        lines = _code_lines(stripped.lines, code, range(info.first, info.last + 1))
        if 0 < lines < HOT_REGION_PART * body:
            return index, info
    return None
