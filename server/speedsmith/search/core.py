"""The machinery every search strategy shares.

One generation at a time under the budget (``budget.Meter``: each generation may produce at
most the tokens left), then deduplicated verification of what was generated (normalised AST;
the original and earlier candidates are never verified twice), the attempts in order, their
scores (verified speedup, or partial credit for parsing and being equivalent), and the
verifier's feedback in words for revision prompts.

Verification overlaps generation: each candidate is handed to one verification thread as soon
as it is generated, so its equivalence checks run while the model writes the next one. Timing
rounds never overlap generation: the verifier takes the compute lock (``compute.exclusive``,
with priority) for them, and the next generation waits.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from speedsmith.errors import Cancelled
from speedsmith.isolate import Context, FunctionInfo, RegionInfo
from speedsmith.llm.base import (
    Backend,
    Generation,
    GenerationRequest,
    Prompt,
    batch_width,
    generate_batch,
)
from speedsmith.search.budget import Meter
from speedsmith.search.prompt import FENCE, extract, normalised
from speedsmith.search.region import extract_region
from speedsmith.verify.verifier import Verdict

Verifier = Callable[[str], Verdict]
Progress = Callable[[str, str], None]

ORIGINAL = -1
"""``Attempt.duplicate_of`` for a candidate that is the original function again."""
REGION_EVERY = 2
"""With a hot region (``Search.hot_region``), every second fresh proposal (the second, the
fourth...) is a hot-region proposal: the whole function, shown with the hot region marked and
asked to speed that up (``region.build_prompt``); the others, the first included, plain
whole-function proposals."""


@dataclass(frozen=True)
class Attempt:
    source: str | None
    """The candidate function, or None when the reply held none (see ``error``)."""
    error: str
    """Why it was rejected before verification, or the verifier's reason."""
    verdict: Verdict | None = None
    """None when not verified (did not parse, duplicate, wall-clock cap reached)."""
    round: int = 0
    branch: int = 0
    hypothesis: str = ""
    """The optimisation idea the prompt carried ('' for none)."""
    completion_tokens: int = 0
    parent: int | None = None
    """Index of the attempt this one revises."""
    duplicate_of: int | None = None
    """Index of the earlier attempt with the same normalised AST (``ORIGINAL``: the original)."""
    text: str = ""
    """The reply's code as written (shown back to the model when it did not parse)."""
    truncated: bool = False
    """The reply was cut off by the token cap before its function ended (not parsed)."""
    tool: str = ""
    """The tool that wrote it without the model (``tools.py``, e.g. ``ruff``), '' for the
    model."""
    region: RegionInfo | None = None
    """The hot region its prompt asked to speed up (a hot-region proposal: a whole-function
    rewrite with that region marked); None for a plain proposal."""


@dataclass(frozen=True)
class HypothesisUpdate:
    """One re-ranking of maxmode's hypotheses, before ``round``."""

    round: int
    ranking: tuple[tuple[str, float], ...]
    """Active hypotheses with the best score of their branch, best first."""
    replaced: tuple[tuple[str, str], ...] = ()
    """(retired, new) pairs."""


@dataclass(frozen=True)
class SearchResult:
    attempts: tuple[Attempt, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    verification_seconds: float = 0.0
    strategy: str = "best-of-n"
    budget_tokens: int = 0
    generations: int = 0
    """Backend calls, hypothesis proposals included."""
    stopped: str = ""
    """Why the search ended."""
    route: str = ""
    """adaptive: ``easy``, ``hard`` or ``hopeless``."""
    hypotheses: tuple[str, ...] = ()
    """maxmode: every hypothesis used, in the order they were adopted."""
    updates: tuple[HypothesisUpdate, ...] = ()

    @property
    def generated(self) -> int:
        return len(self.attempts)

    @property
    def parsed(self) -> int:
        return sum(a.source is not None for a in self.attempts)

    @property
    def truncated(self) -> int:
        """Model candidates cut off by the token cap (counted apart from syntax errors)."""
        return sum(a.truncated for a in self.attempts)

    @property
    def tool(self) -> int:
        """Candidates written by tools without the model (zero tokens; in ``generated``)."""
        return sum(bool(a.tool) for a in self.attempts)

    @property
    def region(self) -> int:
        """Hot-region proposals: candidates asked to speed up the hot region (in ``generated``)."""
        return sum(a.region is not None for a in self.attempts)

    @property
    def unparsed(self) -> dict[str, int]:
        """Why candidates held no function, by reason (the error up to its first colon or
        " to ": ``does not parse``, ``truncated``, ``changed the parameters``...), most
        frequent first."""
        reasons = Counter(
            re.split(r":| to ", a.error, maxsplit=1)[0] for a in self.attempts if a.source is None
        )
        return dict(reasons.most_common())

    @property
    def equivalent(self) -> list[Attempt]:
        return [a for a in self.attempts if a.verdict is not None and a.verdict.equivalent]

    @property
    def faster(self) -> list[Attempt]:
        """Verified faster candidates, best lower confidence bound first."""
        found = [a for a in self.equivalent if a.verdict is not None and a.verdict.faster]
        return sorted(
            found,
            key=lambda a: a.verdict.ci95[0] if a.verdict and a.verdict.ci95 else 0,
            reverse=True,
        )

    @property
    def early_stop(self) -> bool:
        return self.route == "hopeless"


@dataclass(frozen=True)
class Slot:
    """Where a candidate belongs in the search: its round, branch, idea and parent."""

    round: int = 0
    branch: int = 0
    hypothesis: str = ""
    parent: int | None = None
    region: RegionInfo | None = None
    """The hot region the candidate's prompt asked to speed up (``Search.hot_region``;
    ``search/region.py``); None: a plain proposal (of the whole function, or of the search's
    own region)."""


Request = tuple[Prompt, float, Slot]
"""One generation to make: the prompt, its temperature, and the slot of the candidate."""


@dataclass(frozen=True)
class Draft:
    """A generated candidate waiting for verification."""

    source: str | None
    error: str
    text: str
    completion_tokens: int
    slot: Slot
    truncated: bool = False
    tool: str = ""

    def attempt(
        self, error: str, verdict: Verdict | None = None, duplicate_of: int | None = None
    ) -> Attempt:
        return Attempt(
            source=self.source,
            error=error,
            verdict=verdict,
            round=self.slot.round,
            branch=self.slot.branch,
            hypothesis=self.slot.hypothesis,
            completion_tokens=self.completion_tokens,
            parent=self.slot.parent,
            duplicate_of=duplicate_of,
            text=self.text,
            truncated=self.truncated,
            tool=self.tool,
            region=self.slot.region,
        )


def _restarts(reply: str) -> bool:
    """The reply writes a whole definition at column 0 (``def``, ``async def``, a decorator)
    instead of continuing the prefilled header: it is taken as it is."""
    first = next((line for line in reply.splitlines() if line.strip()), "")
    return first.startswith(("def ", "async def ", "@"))


def verdict_score(verdict: Verdict | None, parsed: bool) -> float:
    """Partial credit: 0 no function, 1 parses, 2 equivalent (+ speed below 1x), 3+ faster."""
    if not parsed:
        return 0.0
    if verdict is None or not verdict.equivalent:
        return 1.0
    if verdict.faster:
        low = verdict.ci95[0] if verdict.ci95 else (verdict.speedup or 1.0)
        return 3.0 + low
    return 2.0 + min(verdict.speedup or 0.0, 0.99)


class Search:
    """The state of one search: attempts so far, budget, seen candidates."""

    def __init__(
        self,
        fn: FunctionInfo,
        context: Context,
        backend: Backend,
        verifier: Verifier,
        meter: Meter,
        *,
        strategy: str,
        temperature: float,
        seed: int,
        progress: Progress,
        cancel: threading.Event | None = None,
        hot_lines: str = "",
        region: RegionInfo | None = None,
        hot_region: RegionInfo | None = None,
    ):
        self.fn = fn
        self.region = region
        """Rewrite only these statements (``search/region.py``); None: the whole function."""
        self.hot_region = hot_region if region is None else None
        """Where the original spends most of its time, a strict part of the function
        (``region.hot_region``): a proposal kind of its own next to whole-function rewrites
        (``proposal_region``); None with a region of the search's own."""
        self.context = context
        self.backend = backend
        self.verifier = verifier
        self.meter = meter
        self.strategy = strategy
        self.temperature = temperature
        self.seed = seed
        self.progress = progress
        self.cancel = cancel
        self.hot_lines = hot_lines
        """Where the original spends its time, for revision prompts (``prompt.hot_lines_text``)."""
        self.attempts: list[Attempt] = []
        self.generations = 0
        self.generation_seconds = 0.0
        self.verification_seconds = 0.0
        self.stopped = ""
        self.route = ""
        self.hypotheses: list[str] = []
        self.updates: list[HypothesisUpdate] = []
        self._seen: dict[str, int] = {normalised(fn.source): ORIGINAL}
        self._pending: dict[int, tuple[Draft, Future[Verdict | None]]] = {}
        self._verifying: ThreadPoolExecutor | None = None

    # -- generation ------------------------------------------------------------------------

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")

    def can_generate(self) -> bool:
        return self.meter.can_generate()

    def complete(self, prompt: Prompt, *, temperature: float, cap: int | None = None) -> Generation:
        """One call of the backend, charged to the budget (callers check ``can_generate``)."""
        self.check_cancel()
        max_tokens = self.meter.max_tokens(cap)
        started = time.perf_counter()
        generation = self.backend.generate(
            prompt,
            max_tokens=max_tokens,
            temperature=max(0.05, temperature),
            seed=self.seed + self.generations,
            stop=(FENCE,),
            cancel=self.cancel,
        )
        self.generations += 1
        self.meter.charge(generation.completion_tokens, generation.prompt_tokens)
        self.generation_seconds += time.perf_counter() - started
        return generation

    def draft(self, prompt: Prompt, temperature: float, slot: Slot) -> Draft | None:
        """Generate one candidate; None when the budget cannot pay for one."""
        self.check_cancel()
        if not self.can_generate():
            return None
        kind = f", hot region {slot.region.lines_text}" if slot.region is not None else ""
        self.progress(
            "generation",
            f"Generating candidate {len(self.attempts) + 1} "
            f"({self.meter.spent_tokens}/{self.meter.spec.tokens} tokens, {self.strategy}{kind})",
        )
        cap = self.meter.max_tokens()
        generation = self.complete(prompt, temperature=temperature, cap=cap)
        return self.to_draft(prompt, generation, slot, cap)

    def proposal_region(self, index: int) -> RegionInfo | None:
        """The hot region for the ``index``-th fresh proposal (0-based; every
        ``REGION_EVERY``-th from the second), else None: a whole-function proposal."""
        if self.hot_region is None or index % REGION_EVERY != REGION_EVERY - 1:
            return None
        return self.hot_region

    def region_of(self, index: int) -> RegionInfo | None:
        """The hot region the attempt (or the earlier one it duplicates) was asked to speed up:
        its revisions aim at that region again. None for a plain whole-function attempt."""
        return self.resolved(index).region

    def to_draft(self, prompt: Prompt, generation: Generation, slot: Slot, cap: int) -> Draft:
        """The candidate in a reply generated with ``max_tokens=cap``; a reply that used all of
        it was cut off unless its function ended before (``prompt.extract``)."""
        reply = generation.text
        if prompt.prefill_code and not _restarts(reply):
            reply = prompt.prefill_code + reply
        code = reply.split(FENCE)[0]
        hit_cap = generation.completion_tokens >= cap and FENCE not in generation.text
        # A hot-region proposal is a whole-function rewrite (``region.build_prompt``); only
        # the user's selection is rewritten on its own, the rest of the function verbatim.
        if self.region is not None:
            extracted = extract_region(code, self.fn, self.region, hit_cap=hit_cap)
        else:
            extracted = extract(code, self.fn, hit_cap=hit_cap)
        self.meter.note_reply(generation.completion_tokens, complete=not extracted.truncated)
        return Draft(
            extracted.source,
            extracted.error,
            code,
            generation.completion_tokens,
            slot,
            truncated=extracted.truncated,
        )

    def add_tool_candidates(self, candidates: Iterable[tuple[str, str]]) -> list[int]:
        """Candidates written without the model, ``(tool, source)``: they cost no tokens and
        are verified like the model's (before it writes anything); their attempt indices."""
        indices = []
        try:
            for tool, source in candidates:
                self.check_cancel()
                extracted = extract(source, self.fn)
                draft = Draft(extracted.source, extracted.error, source, 0, Slot(), tool=tool)
                indices.append(self.submit(draft))
        except BaseException:
            self.close()
            raise
        self.settle()
        return indices

    def _batch_size(self, width: int) -> int:
        """Requests to generate together: at most ``width``, and only as many as the budget
        pays for at the full per-candidate cap each (so a batch never overspends it)."""
        if width <= 1:
            return 1
        return max(1, min(width, self.meter.remaining_tokens // self.meter.max_tokens()))

    def drafts(self, requests: list[Request]) -> list[Draft]:
        """Generate the requests' candidates together (``llm.base.generate_batch``); fewer
        than asked when the budget cannot pay for them all. Seeds are those of one-at-a-time
        generation."""
        if len(requests) == 1:
            single = self.draft(*requests[0])
            return [] if single is None else [single]
        self.check_cancel()
        if not self.can_generate():
            return []
        count = min(len(requests), self._batch_size(len(requests)))
        requests = requests[:count]
        self.progress(
            "generation",
            f"Generating candidates {len(self.attempts) + 1}-{len(self.attempts) + count} "
            f"together ({self.meter.spent_tokens}/{self.meter.spec.tokens} tokens, "
            f"{self.strategy})",
        )
        max_tokens = self.meter.max_tokens()
        batch = [
            GenerationRequest(
                prompt, max_tokens, max(0.05, t), self.seed + self.generations + i, (FENCE,)
            )
            for i, (prompt, t, _slot) in enumerate(requests)
        ]
        started = time.perf_counter()
        generations = generate_batch(self.backend, batch, cancel=self.cancel)
        self.generation_seconds += time.perf_counter() - started
        made: list[Draft] = []
        for (prompt, _t, slot), generation in zip(requests, generations, strict=True):
            self.generations += 1
            self.meter.charge(generation.completion_tokens, generation.prompt_tokens)
            made.append(self.to_draft(prompt, generation, slot, max_tokens))
        return made

    # -- verification ----------------------------------------------------------------------

    def submit(self, draft: Draft) -> int:
        """Take a generated draft: its attempt index. Unless it is rejected outright (no
        function, a duplicate, past the wall-clock cap) its verification starts in the
        background; ``settle`` waits for it."""
        index = len(self.attempts)
        if draft.source is None:
            self.attempts.append(draft.attempt(draft.error))
            return index
        key = normalised(draft.source)
        earlier = self._seen.get(key)
        if earlier is not None:
            why = "same as the original" if earlier == ORIGINAL else "duplicate"
            self.attempts.append(draft.attempt(why, duplicate_of=earlier))
            return index
        self._seen[key] = index
        self.attempts.append(draft.attempt("not verified yet"))
        if self._verifying is None:
            self._verifying = ThreadPoolExecutor(1, thread_name_prefix="speedsmith-verify")
        self._pending[index] = (draft, self._verifying.submit(self._verify_one, index, draft))
        return index

    def _verify_one(self, index: int, draft: Draft) -> Verdict | None:
        if self.cancel is not None and self.cancel.is_set():
            return None
        if self.meter.out_of_time():
            return None
        self.progress("verification", f"Verifying candidate {index + 1}")
        started = time.perf_counter()
        try:
            assert draft.source is not None
            return self.verifier(draft.source)
        finally:
            self.verification_seconds += time.perf_counter() - started

    def settle(self) -> None:
        """Wait for every verification started so far and record its verdict."""
        for index in sorted(self._pending):
            draft, future = self._pending.pop(index)
            verdict = future.result()  # re-raises Cancelled
            if verdict is None:
                self.check_cancel()
                self.attempts[index] = draft.attempt("not verified: wall-clock cap reached")
            else:
                self.attempts[index] = draft.attempt(verdict.reason, verdict)

    def round(self, requests: Iterable[Request]) -> list[int]:
        """Generate every request's candidate, each verified while the next is generated.

        A backend with a ``batch_width`` above 1 (``llm.base.batch_width``) gets the requests
        that many at a time (``drafts``); otherwise one at a time, as always."""
        indices: list[int] = []
        width = batch_width(self.backend)
        pending = iter(requests)
        try:
            while True:
                chunk = list(itertools.islice(pending, self._batch_size(width)))
                if not chunk:
                    break
                drafts = self.drafts(chunk)
                indices += [self.submit(made) for made in drafts]
                if len(drafts) < len(chunk):
                    break
        except BaseException:
            self.close()
            raise
        self.settle()
        return indices

    def close(self) -> None:
        """Stop the verification thread: queued verifications are dropped, the running one is
        waited for (it stops early once the search is cancelled)."""
        if self._verifying is not None:
            self._verifying.shutdown(wait=True, cancel_futures=True)
            self._verifying = None
        self._pending.clear()

    # -- scores and feedback ---------------------------------------------------------------

    def resolved(self, index: int) -> Attempt:
        """The attempt, or the earlier one it duplicates (the original stays itself)."""
        attempt = self.attempts[index]
        while attempt.duplicate_of is not None and attempt.duplicate_of != ORIGINAL:
            attempt = self.attempts[attempt.duplicate_of]
        return attempt

    def score(self, index: int) -> float:
        attempt = self.attempts[index]
        if attempt.duplicate_of == ORIGINAL:
            return 0.5
        real = self.resolved(index)
        return verdict_score(real.verdict, real.source is not None)

    def best(self, indices: list[int] | None = None) -> int | None:
        """The best-scoring attempt (earliest on ties), among ``indices`` or all."""
        pool = list(range(len(self.attempts))) if indices is None else indices
        if not pool:
            return None
        return max(pool, key=lambda i: (self.score(i), -i))

    def unique(self, indices: list[int]) -> list[int]:
        """Drop duplicates (of the original or of another attempt)."""
        return [i for i in indices if self.attempts[i].duplicate_of is None]

    def feedback(self, index: int) -> str:
        """The verifier's result for the attempt, in words for the model."""
        attempt = self.attempts[index]
        if attempt.source is None:
            return f"it is not a valid function ({attempt.error[:160]})"
        if attempt.duplicate_of == ORIGINAL:
            return "it is the same as the original function; change how it works"
        real = self.resolved(index)
        verdict = real.verdict
        if verdict is None:
            return real.error
        if not verdict.equivalent:
            detail = verdict.mismatches[0] if verdict.mismatches else verdict.reason
            return f"wrong results: {detail[:240]}"
        if verdict.faster and verdict.speedup is not None:
            return f"correct and {verdict.speedup:.2f}x faster than the original; make it faster"
        if verdict.speedup is not None:
            return f"correct but not faster ({verdict.speedup:.2f}x the original's speed)"
        return "correct but not faster"

    def revisable(self, index: int) -> str:
        """The code to show when asking for a revision of the attempt."""
        attempt = self.resolved(index)
        return attempt.source if attempt.source is not None else attempt.text

    # -- result ----------------------------------------------------------------------------

    def result(self) -> SearchResult:
        if not self.stopped:
            self.stopped = self.meter.why_stopped() if not self.can_generate() else "done"
        return SearchResult(
            attempts=tuple(self.attempts),
            prompt_tokens=self.meter.prompt_tokens,
            completion_tokens=self.meter.spent_tokens,
            generation_seconds=self.generation_seconds,
            verification_seconds=self.verification_seconds,
            strategy=self.strategy,
            budget_tokens=self.meter.spec.tokens,
            generations=self.generations,
            stopped=self.stopped,
            route=self.route,
            hypotheses=tuple(self.hypotheses),
            updates=tuple(self.updates),
        )
