"""Search strategies: how a token budget is spent on candidates, with the verifier as scorer.

* ``best-of-n``: independent samples from one prompt, temperatures spread for diversity.
* ``revision``: sequential rounds; each prompt carries the best attempt so far (the latest on
  ties) and the verifier's feedback on it (parse error, a mismatching call with expected vs
  got, exception, measured speedup), plus the hot lines from a profile of the original
  (``hot_lines``, from the engine; every strategy's revision prompts carry them).
* ``beam``: keep the top ``beam_width`` candidates (verified speedup, else partial credit for
  parsing and equivalence) and expand each with ``beam_expand`` revisions per round.
* ``maxmode``: ``width`` branches x ``depth`` correction rounds. The model first proposes
  ``hypotheses`` optimisation ideas in natural language (generic ideas fill any gap); the best
  ``width`` are assigned to branches, the rest wait in reserve. Every ``update_every`` rounds the
  ideas are re-ranked by their branch's verifier results, and the ideas of branches with nothing
  equivalent are replaced (from the reserve, else by asking the model for new ones).
* ``adaptive``: a probe (batches of ``adaptive_probe_size`` samples, extended while nothing is
  equivalent, up to a quarter of the budget) estimates difficulty, then routes: a faster
  candidate already (easy) -> sequential revision of the best, until ``adaptive_patience``
  rounds bring no improvement; equivalent but none faster (hard) -> wider exploration, more
  independent samples until one is faster, then the easy route; nothing equivalent
  (hopeless) -> stop early and say so. The probe's tokens count.

Every strategy stops when the budget cannot pay for another generation.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from speedsmith.isolate import Context, FunctionInfo, RegionInfo
from speedsmith.llm.base import Backend, Prompt
from speedsmith.search.budget import BudgetSpec, Meter
from speedsmith.search.core import (
    HypothesisUpdate,
    Progress,
    Request,
    Search,
    SearchResult,
    Slot,
    Verifier,
)
from speedsmith.search.patterns import hypotheses as pattern_hypotheses
from speedsmith.search.prompt import (
    build_hypotheses_prompt,
    fallback_hypotheses,
    parse_hypotheses,
)
from speedsmith.search.region import build_prompt, build_revision_prompt
from speedsmith.search.tools import tool_candidates
from speedsmith.settings import DEFAULTS, STRATEGIES

HYPOTHESES_TOKENS = 100
"""Cap on the tokens of one hypothesis proposal."""


@dataclass(frozen=True)
class StrategyConfig:
    """The strategy settings; defaults are the settings' own (``settings.DEFAULTS``)."""

    name: str = DEFAULTS.strategy
    beam_width: int = DEFAULTS.beam_width
    beam_expand: int = DEFAULTS.beam_expand
    maxmode_width: int = DEFAULTS.maxmode_width
    maxmode_depth: int = DEFAULTS.maxmode_depth
    maxmode_hypotheses: int = DEFAULTS.maxmode_hypotheses
    maxmode_update_every: int = DEFAULTS.maxmode_update_every
    adaptive_probe_size: int = DEFAULTS.adaptive_probe_size
    adaptive_patience: int = DEFAULTS.adaptive_patience

    @classmethod
    def from_settings(cls, settings: Any) -> StrategyConfig:
        """The fields of ``settings`` (a ``Settings``) that share this class's names."""
        names = {f.name for f in dataclasses.fields(cls)} - {"name"}
        values = {n: getattr(settings, n) for n in names if hasattr(settings, n)}
        return cls(name=settings.strategy, **values)


def temperature_for(index: int, base: float) -> float:
    """Spread samples around ``base``: the first is the most conservative."""
    spread = (0.0, 0.15, 0.3, -0.2, 0.45, 0.1, 0.25, -0.1)
    return max(0.05, base + spread[index % len(spread)])


def run_search(
    fn: FunctionInfo,
    context: Context,
    backend: Backend,
    verifier: Verifier,
    *,
    config: StrategyConfig,
    budget: BudgetSpec,
    temperature: float,
    seed: int,
    progress: Progress,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.perf_counter,
    hot_lines: str = "",
    tools: bool = True,
    region: RegionInfo | None = None,
    hot_region: RegionInfo | None = None,
) -> SearchResult:
    """Spend ``budget`` with the strategy ``config.name``; ``hot_lines`` (where the original
    spends its time, ``prompt.hot_lines_text``) goes into every revision prompt. With
    ``tools``, the zero-token candidates (``tools.tool_candidates``) are verified first. With
    ``region`` (``isolate.snap_region``), every candidate rewrites only those statements
    (``search/region.py``) and no tool runs (tools rewrite the whole function). With
    ``hot_region`` (``region.hot_region``) and no ``region``, every second fresh proposal is
    asked to speed up the hot region, marked in the function it rewrites whole
    (``Search.proposal_region``), and revisions keep the kind of what they revise."""
    if config.name not in _RUNNERS:
        raise ValueError(f"unknown strategy {config.name!r}: expected one of {STRATEGIES}")
    search = Search(
        fn,
        context,
        backend,
        verifier,
        Meter(budget, clock),
        strategy=config.name,
        temperature=temperature,
        seed=seed,
        progress=progress,
        cancel=cancel,
        hot_lines=hot_lines,
        region=region,
        hot_region=hot_region,
    )
    try:
        if tools and region is None:
            progress("generation", "Rewriting with tools (no tokens)")
            search.add_tool_candidates(tool_candidates(fn, context))
        _RUNNERS[config.name](search, config)
    finally:
        search.close()
    return search.result()


# -- best-of-n ------------------------------------------------------------------------------


def _samples(search: Search, count: int | None, round: int = 0, start: int = 0) -> list[int]:
    """``count`` independent samples (None: as many as the budget pays for), verified; the
    temperatures continue the spread from sample ``start``, and so do the proposal kinds
    (``Search.proposal_region``: with a hot region, every second sample is asked to speed it
    up)."""
    prompts: dict[RegionInfo | None, Prompt] = {
        None: build_prompt(search.fn, search.context, region=search.region)
    }
    if search.hot_region is not None:
        prompts[search.hot_region] = build_prompt(
            search.fn, search.context, hot_region=search.hot_region
        )
    indices = range(start, start + count) if count is not None else itertools.count(start)
    return search.round(
        (
            prompts[search.proposal_region(index)],
            temperature_for(index, search.temperature),
            Slot(round=round, region=search.proposal_region(index)),
        )
        for index in indices
    )


def _revision(
    search: Search, index: int, idea: str | None = None
) -> tuple[Prompt, RegionInfo | None]:
    """The prompt revising attempt ``index`` and the hot region it aims at (that of the
    attempt: a hot-region proposal's revisions aim at the region again)."""
    hot = search.region_of(index)
    prompt = build_revision_prompt(
        search.fn,
        search.context,
        search.revisable(index),
        search.feedback(index),
        idea=idea,
        hot_lines=search.hot_lines,
        region=search.region,
        hot_region=hot,
    )
    return prompt, hot


def best_of_n_strategy(search: Search, config: StrategyConfig) -> None:
    _samples(search, search.meter.spec.candidates)


# -- revision -------------------------------------------------------------------------------


def _revise(
    search: Search, start: int | None, first_round: int = 0, patience: int | None = None
) -> None:
    """Sequential rounds, each revising the best attempt so far (latest on ties)."""
    current = start
    best_score = search.score(start) if start is not None else -1.0
    stale = 0
    round = first_round
    while search.can_generate():
        hot = None
        if current is None:
            prompt = build_prompt(search.fn, search.context, region=search.region)
        else:
            prompt, hot = _revision(search, current)
        temperature = search.temperature + 0.1 * min(stale, 4)
        slot = Slot(round=round, parent=current, region=hot)
        made = search.round([(prompt, temperature, slot)])
        if not made:
            break
        latest = made[0]
        score = search.score(latest)
        if score > best_score:
            best_score, stale = score, 0
        else:
            stale += 1
        if current is None or score >= search.score(current):
            current = latest
        round += 1
        if patience is not None and stale >= patience:
            search.stopped = f"{patience} revisions without improvement"
            break


def _tool_indices(search: Search) -> list[int]:
    return [i for i, attempt in enumerate(search.attempts) if attempt.tool]


def _best_tool(search: Search) -> int | None:
    """The best verified-equivalent zero-token candidate: revisions start from it."""
    best = search.best(_tool_indices(search))
    return best if best is not None and search.score(best) >= 2.0 else None


def revision_strategy(search: Search, config: StrategyConfig) -> None:
    _revise(search, _best_tool(search))


# -- beam -----------------------------------------------------------------------------------


def _top(search: Search, indices: list[int], width: int) -> list[int]:
    pool = search.unique(indices) or indices
    return sorted(pool, key=lambda i: (-search.score(i), i))[:width]


def _beam(search: Search, config: StrategyConfig, seeds: list[int], first_round: int) -> None:
    beam = _top(search, seeds, config.beam_width)
    round = first_round
    while beam and search.can_generate():
        requests: list[Request] = []
        for member in beam:
            prompt, hot = _revision(search, member)
            for child in range(config.beam_expand):
                temperature = temperature_for(child, search.temperature)
                slot = Slot(round=round, parent=member, region=hot)
                requests.append((prompt, temperature, slot))
        made = search.round(requests)
        if not made:
            break
        beam = _top(search, beam + made, config.beam_width)
        round += 1


def beam_strategy(search: Search, config: StrategyConfig) -> None:
    seeds = _samples(search, config.beam_width * config.beam_expand)
    _beam(search, config, seeds + _tool_indices(search), first_round=1)


# -- maxmode --------------------------------------------------------------------------------


def _propose(search: Search, count: int, failed: tuple[str, ...] = ()) -> list[str]:
    """Ask the model for ``count`` ideas (tokens counted); [] when the budget cannot pay."""
    if not search.can_generate():
        return []
    search.progress("generation", f"Proposing {count} optimisation hypotheses")
    prompt = build_hypotheses_prompt(search.fn, search.context, count, failed)
    generation = search.complete(prompt, temperature=search.temperature, cap=HYPOTHESES_TOKENS)
    return parse_hypotheses(generation.text, count)


class _Ideas:
    """maxmode's hypotheses: one active per branch, a reserve, and the retired ones."""

    def __init__(self, search: Search, config: StrategyConfig):
        self.search = search
        self.config = config
        # Detected patterns first (grounded in the code), then the model's ideas, then generic.
        proposed = pattern_hypotheses(search.fn.source, search.context.imports)
        for idea in _propose(search, config.maxmode_hypotheses):
            if idea.lower() not in {p.lower() for p in proposed}:
                proposed.append(idea)
        proposed = proposed[: config.maxmode_hypotheses]
        for idea in fallback_hypotheses(search.fn.source):
            if len(proposed) >= config.maxmode_hypotheses:
                break
            if idea.lower() not in {p.lower() for p in proposed}:
                proposed.append(idea)
        width = min(config.maxmode_width, len(proposed))
        self.active = proposed[:width]
        self.reserve = proposed[width:]
        self.retired: list[str] = []
        search.hypotheses.extend(proposed)

    def branch_score(self, branch: int, since_round: int) -> float:
        scores = [
            self.search.score(i)
            for i, a in enumerate(self.search.attempts)
            if a.branch == branch and a.round >= since_round and a.hypothesis
        ]
        return max(scores, default=0.0)

    def update(self, round: int, adopted: list[int]) -> None:
        """Re-rank by branch results; replace ideas whose branch found nothing equivalent."""
        scores = [self.branch_score(b, adopted[b]) for b in range(len(self.active))]
        order = sorted(range(len(self.active)), key=lambda b: -scores[b])
        ranking = tuple((self.active[b], scores[b]) for b in order)
        replaced: list[tuple[str, str]] = []
        failing = [b for b in order if scores[b] < 2.0]
        if failing and not self.reserve:
            known = tuple(self.active[b] for b in failing) + tuple(self.retired)
            fresh = _propose(self.search, self.config.maxmode_hypotheses, known)
            taken = {h.lower() for h in self.search.hypotheses}
            self.reserve = [idea for idea in fresh if idea.lower() not in taken]
            self.search.hypotheses.extend(self.reserve)
        for branch in reversed(failing):  # worst first
            if not self.reserve:
                break
            new = self.reserve.pop(0)
            replaced.append((self.active[branch], new))
            self.retired.append(self.active[branch])
            self.active[branch] = new
            adopted[branch] = round
        self.search.updates.append(HypothesisUpdate(round, ranking, tuple(replaced)))


def maxmode_strategy(search: Search, config: StrategyConfig) -> None:
    ideas = _Ideas(search, config)
    width = len(ideas.active)
    adopted = [0] * width  # round each branch's current idea was adopted
    latest: list[int | None] = [None] * width
    for round in range(config.maxmode_depth):
        if not search.can_generate():
            break
        if round and round % config.maxmode_update_every == 0:
            before = list(ideas.active)
            ideas.update(round, adopted)
            for branch in range(width):
                if ideas.active[branch] != before[branch]:
                    latest[branch] = None  # a new idea starts from the original
        requests: list[Request] = []
        for branch in range(width):
            idea = ideas.active[branch]
            base = _branch_best(search, branch, adopted[branch], latest[branch])
            if base is None:  # a branch's fresh proposals: the kind of its index
                hot = search.proposal_region(branch)
                prompt = build_prompt(
                    search.fn, search.context, idea=idea, region=search.region, hot_region=hot
                )
            else:
                prompt, hot = _revision(search, base, idea)
            temperature = temperature_for(branch, search.temperature)
            slot = Slot(round=round, branch=branch, hypothesis=idea, parent=base, region=hot)
            requests.append((prompt, temperature, slot))
        made = search.round(requests)
        for index in made:
            latest[search.attempts[index].branch] = index
        if len(made) < len(requests):
            break
    else:
        search.stopped = f"depth {config.maxmode_depth} reached"


def _branch_best(search: Search, branch: int, since: int, latest: int | None) -> int | None:
    """What a branch revises next: its best attempt under its current idea (latest on ties)."""
    if latest is None:
        return None
    mine = [
        i
        for i, a in enumerate(search.attempts)
        if a.branch == branch and a.round >= since and a.hypothesis
    ]
    return max(mine, key=lambda i: (search.score(i), i)) if mine else latest


# -- adaptive -------------------------------------------------------------------------------


PROBE_SHARE = 0.25
"""adaptive: the most of the budget the difficulty probe may spend before declaring hopeless."""


def adaptive_strategy(search: Search, config: StrategyConfig) -> None:
    spec = search.meter.spec
    batch = config.adaptive_probe_size
    if spec.candidates is not None:
        batch = min(batch, spec.candidates)
        most_samples = max(batch, int(spec.candidates * PROBE_SHARE))
    else:
        most_samples = None
    probe: list[int] = []
    tools = _tool_indices(search)  # verified already: they count as part of the probe
    # Probe in batches while nothing equivalent turns up, up to a quarter of the budget: one
    # unlucky batch does not condemn a function the model can fix once in ten samples.
    while True:
        size = batch if most_samples is None else min(batch, most_samples - len(probe))
        made = _samples(search, size, start=len(probe))
        probe += made
        if not made or any(search.score(i) >= 2.0 for i in probe + tools):
            break
        if most_samples is not None and len(probe) >= most_samples:
            break
        if most_samples is None and search.meter.spent_tokens >= PROBE_SHARE * spec.tokens:
            break
    if not probe and not tools:
        return
    probe = tools + probe
    attempts = [search.attempts[i] for i in probe]
    parsed = sum(a.source is not None for a in attempts)
    equivalent = [i for i in probe if search.score(i) >= 2.0]
    faster = [i for i in probe if search.score(i) >= 3.0]
    if not equivalent:
        search.route = "hopeless"
        search.stopped = (
            f"hopeless: nothing equivalent after a {len(probe)}-candidate probe ({parsed} parsed)"
        )
        return
    if not faster:
        # Hard: the model writes correct code but nothing faster yet. Widen the exploration
        # with more independent samples (cheap, and what pays on hard problems: Snell et al.
        # 2024) until one is verified faster, within the candidate count of the budget.
        search.route = "hard"
        drawn = len(probe) - len(tools)  # model samples only
        while not faster and search.can_generate():
            size = batch if spec.candidates is None else min(batch, spec.candidates - drawn)
            if size <= 0:
                break
            made = _samples(search, size, start=drawn)
            if not made:
                break
            drawn += len(made)
            probe += made
            faster = [i for i in made if search.score(i) >= 3.0]
        if not faster:
            return
    else:
        search.route = "easy"
    # Something is faster: revise the best until revisions stop improving it.
    _revise(search, search.best(probe), first_round=1, patience=config.adaptive_patience)


_RUNNERS: dict[str, Callable[[Search, StrategyConfig], None]] = {
    "best-of-n": best_of_n_strategy,
    "revision": revision_strategy,
    "beam": beam_strategy,
    "maxmode": maxmode_strategy,
    "adaptive": adaptive_strategy,
}

assert tuple(_RUNNERS) == STRATEGIES
REVISING = ("revision", "beam", "maxmode", "adaptive")
"""Strategies that write revision prompts (so profit from the original's hot lines)."""
assert set(REVISING) < set(STRATEGIES)
__all__ = ["REVISING", "STRATEGIES", "StrategyConfig", "run_search", "temperature_for"]
