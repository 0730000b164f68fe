"""The result of one optimisation run: a frozen dataclass shared by the CLI and the server."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["improved", "no-improvement", "refused", "error"]

PHASES = ("workload", "generation", "verification", "total")


@dataclass(frozen=True)
class CandidateCounts:
    generated: int = 0
    """Every candidate, the zero-token ones written by tools included (``tool``)."""
    parsed: int = 0
    truncated: int = 0
    """Model candidates cut off by the per-candidate token cap (not parsed, and not counted
    as syntax errors)."""
    equivalent: int = 0
    faster: int = 0
    tool: int = 0
    """Candidates written by tools without the model (``search/tools.py``; zero tokens)."""
    region: int = 0
    """Hot-region proposals: candidates whose prompt marked the hot region (``OptimizeReport.
    hot_region``) and asked to speed it up (whole-function rewrites; in ``generated``)."""
    unparsed: dict[str, int] = field(default_factory=dict)
    """Why candidates held no function to verify, by reason (``search.core.SearchResult.
    unparsed``), e.g. ``{"does not parse": 2, "truncated": 1}``."""


@dataclass(frozen=True)
class TokenCounts:
    prompt: int = 0
    completion: int = 0


@dataclass(frozen=True)
class HotSpot:
    """A line of the original where its recorded calls spend time (the profile of the run)."""

    line: int
    """1-based line in the file when it was profiled."""
    offset: int
    """The same line in the function (0 = its first line, a decorator's or the ``def``): where
    it is once the function has moved."""
    share: float
    """Fraction of the function's traced time (what the line calls counts for it)."""
    hits: int
    text: str
    """The line's source, stripped."""


@dataclass(frozen=True)
class HotRegion:
    """The hot region the search proposed rewrites of (``search/region.py``)."""

    start: int
    """First and last line (1-based, inclusive) in the file."""
    end: int
    share: float
    """Fraction of the function's traced time spent in it."""
    offset: int = 0
    """``start`` in the function (0 = its first line): where it is once the function moved."""


@dataclass(frozen=True)
class FunctionEdit:
    """Replace ``source[start_byte:end_byte]`` (UTF-8 bytes of the file) with ``new_text``."""

    start_byte: int
    end_byte: int
    new_text: str


@dataclass(frozen=True)
class OptimizeReport:
    target: str
    verdict: Verdict
    reason: str
    model: str
    original: str
    speedup: float | None = None
    ci95: tuple[float, float] | None = None
    candidates: CandidateCounts = field(default_factory=CandidateCounts)
    tokens: TokenCounts = field(default_factory=TokenCounts)
    seconds: dict[str, float] = field(default_factory=dict)
    optimized: str | None = None
    diff: str | None = None
    edit: FunctionEdit | None = None
    recorded_calls: int = 0
    sandbox: tuple[str, ...] = ()
    """The confinement layers candidates ran under (``verify/confine.py``), e.g.
    ``bubblewrap``, ``landlock-v7``, ``pid-namespace``; empty when none ran."""
    python: str = ""
    """The interpreter that ran the project's tests and the candidates ('' before it was
    resolved)."""
    region: tuple[int, int] | None = None
    """First and last line (1-based, inclusive) of the statements rewritten when a region was
    asked for (``engine.optimize(region=...)``); None: the whole function."""
    hot_lines: tuple[HotSpot, ...] = ()
    """The original's hottest lines over the recorded calls, most time first (empty when it
    was not profiled); the hover shows them."""
    hot_region: HotRegion | None = None
    """The hot region the search also proposed rewrites of (``candidates.region``); None when
    no region qualified."""

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` object (see README)."""
        data = asdict(self)
        data.pop("edit")
        data["ci95"] = list(self.ci95) if self.ci95 else None
        data["sandbox"] = list(self.sandbox)
        data["region"] = list(self.region) if self.region else None
        data["hot_lines"] = [asdict(hot) for hot in self.hot_lines]
        return data

    def summary(self) -> str:
        """One line for a status message, e.g. '6 candidates, 1 equivalent, none faster'."""
        c = self.candidates
        if self.verdict == "improved" and self.speedup is not None and self.ci95:
            return (
                f"verified {self.speedup:.2f}x faster "
                f"(95% CI {self.ci95[0]:.2f}-{self.ci95[1]:.2f}x) - "
                f"{c.generated} candidates, {c.equivalent} equivalent"
            )
        if self.verdict == "no-improvement":
            faster = "none faster" if c.faster == 0 else f"{c.faster} faster"
            return (
                f"no verified speedup: {c.generated} candidates, {c.parsed} parsed, "
                f"{c.equivalent} equivalent, {faster}"
            )
        return f"{self.verdict}: {self.reason}"
