"""Batched generation with llama.cpp's low-level API: one sequence per branch.

``Batcher`` owns a second llama.cpp context on the loaded model (unified KV cache, ``n_seq``
sequences). For a batch of requests it

0. (the context has one KV stream of ``n_ctx`` cells per sequence, ``kv_unified`` off)
1. tokenises every prompt and finds their longest common token prefix (the instructions,
   the function, its context);
2. **reuses** what sequence 0 still holds from the previous batch: only the part of the prefix
   not already in the cache is evaluated (``reuse=False`` clears the cache instead and
   evaluates every prompt in full, for comparison);
3. copies the prefix's KV cells to the other sequences (``llama_memory_seq_cp``: no
   recomputation), evaluates each prompt's own suffix in one batch;
4. decodes one token per live sequence per ``llama_decode``, each sequence sampled by its own
   sampler chain (the same chain as ``Llama.create_completion``: repeat penalty over the last
   64 tokens, top-k 40, top-p 0.95, min-p 0.05, temperature, then a distribution seeded with
   the request's seed), so a request's result does not depend on the others in its batch;
5. stops a sequence at an end-of-generation token, a stop string or ``max_tokens``; a set
   ``cancel`` event stops the whole batch before the next token step (``Cancelled``).

A request with a grammar (``grammar.py``: GBNF text) is sampled the way llama.cpp's own
common sampler does it: the token the chain samples is checked against the grammar alone, and
only when the grammar rejects it is the whole vocabulary filtered by the grammar and the chain
applied again. Where every token was valid anyway the result is the unconstrained one, and an
accepted token costs one check instead of a pass over the 49,152-token vocabulary (which made
generation 2.3x slower through ``create_completion(grammar=...)``, where the grammar runs
first on every step).

Counters (``stats``) record the prompt tokens requested and the ones actually evaluated.
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speedsmith.errors import Cancelled, ModelError
from speedsmith.llm.base import Generation
from speedsmith.llm.grammar import MAX_LINE_BYTES, MAX_LINE_RETRIES, syntax_state

PENALTY_LAST_N = 64
"""llama-cpp-python's default ``last_n_tokens_size``: the window of the repeat penalty."""


@dataclass
class BatchStats:
    prompt_tokens: int = 0
    """Prompt tokens of every request (what evaluating each prompt in full would cost)."""
    prompt_tokens_evaluated: int = 0
    """Prompt tokens actually evaluated (the shared prefix once, cached parts not at all)."""
    completion_tokens: int = 0
    generations: int = 0
    grammar_rejections: int = 0
    """Sampled tokens a grammar rejected (each resampled from the grammar's allowed ones)."""
    lines_taken_back: int = 0
    """Lines of syntax-checked replies after which the code could not be Python (rewritten)."""
    batches: int = 0
    decode_seconds: float = 0.0
    """Seconds spent in batches (prompt evaluation and decoding)."""
    widths: list[int] = field(default_factory=list)


@dataclass
class _Seq:
    index: int
    tokens: list[int]
    max_tokens: int
    stop: tuple[bytes, ...]
    sampler: Any
    grammar: Any = None
    """The request's grammar sampler (a ``llama_sampler`` pointer), None: unconstrained."""
    code_prefix: str | None = None
    """The code before the reply (a prefilled header): finished lines are syntax-checked
    (``grammar.syntax_state``); None: not checked."""
    line_start: int = 0
    """Index in ``completion`` where the line being written starts."""
    line_grammar: Any = None
    """A copy of the grammar sampler as it was at ``line_start`` (to take a line back)."""
    newlines: int = 0
    retries: int = 0
    discarded: int = 0
    """Tokens generated and taken back (they still count as generated)."""
    completion: list[int] = field(default_factory=list)
    text: bytes = b""
    done: bool = False
    logits_at: int = -1


class Batcher:
    def __init__(self, llama: Any, *, n_ctx: int, n_seq: int, n_batch: int = 512):
        """``n_ctx`` tokens for each of ``n_seq`` sequences (one KV stream each)."""
        import llama_cpp
        from llama_cpp import _internals as internals

        self._lc = llama_cpp
        self._internals = internals
        self._llama = llama
        self.n_seq = n_seq
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx = n_ctx * n_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        # One KV stream per sequence: a sequence attends to its own cells only, so copying the
        # prefix gives exactly what evaluating it again would (a unified cache does not).
        params.kv_unified = False
        try:
            self._ctx = internals.LlamaContext(model=llama._model, params=params, verbose=False)
            self._batch = internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=n_seq)
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"could not create a batch context: {err}") from err
        self._threads = (int(params.n_threads), int(params.n_threads_batch))
        self._mem = self._ctx.memory
        self._vocab = llama._model.vocab
        n_vocab = int(llama.n_vocab())
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._candidates = np.zeros(
            n_vocab, dtype=np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        )
        """Every token's logit, laid out as ``llama_token_data`` (constrained sampling)."""
        self._cached: list[int] = []
        """Tokens whose KV cells sequence 0 holds (positions 0 .. len - 1)."""
        self._lock = threading.Lock()
        self.stats = BatchStats()

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()

    def tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if self._llama._model.add_bos_token() and self._llama.token_bos() >= 0:
            tokens = [self._llama.token_bos(), *tokens]
        return tokens

    # -- low level ---------------------------------------------------------------------------

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants logits) items in one llama_decode."""
        b = self._batch.batch
        b.n_tokens = len(items)
        for i, (token, pos, seq, logits) in enumerate(items):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        code = self._lc.llama_decode(self._ctx.ctx, b)
        if code != 0:
            raise ModelError(f"llama_decode failed ({code}): the batch does not fit the context")

    def _sampler(self, temperature: float, seed: int) -> Any:
        sampler = self._internals.LlamaSampler()
        sampler.add_penalties(self._llama.n_vocab(), PENALTY_LAST_N, 1.05, 0.0, 0.0)
        sampler.add_top_k(40)
        sampler.add_typical(1.0, 1)
        sampler.add_top_p(0.95, 1)
        sampler.add_min_p(0.05, 1)
        sampler.add_temp(temperature)
        sampler.add_dist(seed & 0xFFFFFFFF)
        return sampler

    def _clone(self, sampler: Any) -> Any:
        return None if sampler is None else self._lc.llama_sampler_clone(sampler)

    def _grammar(self, text: str) -> Any:
        sampler = self._lc.llama_sampler_init_grammar(self._vocab, text.encode("utf-8"), b"root")
        if not sampler:
            raise ModelError("the reply grammar does not parse (llama.cpp rejected it)")
        return sampler

    def _forget(self, keep: int) -> None:
        """Drop every sequence's cells but sequence 0's first ``keep`` positions."""
        for seq in range(1, self.n_seq):
            self._lc.llama_memory_seq_rm(self._mem, seq, -1, -1)
        if not self._lc.llama_memory_seq_rm(self._mem, 0, keep, -1):
            self._lc.llama_memory_clear(self._mem, True)
            keep = 0
        self._cached = self._cached[:keep]

    # -- generation --------------------------------------------------------------------------

    def fits(self, prompts: list[list[int]], max_tokens: list[int]) -> bool:
        return len(prompts) <= self.n_seq and all(
            len(p) + m + 8 <= self.n_ctx for p, m in zip(prompts, max_tokens, strict=True)
        )

    def generate(
        self,
        prompts: list[list[int]],
        *,
        max_tokens: list[int],
        temperatures: list[float],
        seeds: list[int],
        stops: list[tuple[str, ...]],
        cancel: threading.Event | None = None,
        reuse: bool = True,
        grammars: list[str] | None = None,
        code_prefixes: list[str | None] | None = None,
    ) -> list[Generation]:
        """One generation per prompt (at most ``n_seq``), decoded together; ``grammars``: a
        GBNF text per prompt that its reply must follow ('' for none); ``code_prefixes``: the
        code each reply continues, to syntax-check its lines against (None: no check)."""
        if len(prompts) > self.n_seq:
            raise ValueError(f"{len(prompts)} prompts for {self.n_seq} sequences")
        with self._lock:
            started = time.perf_counter()
            seqs = [
                _Seq(
                    i,
                    prompts[i],
                    max_tokens[i],
                    tuple(s.encode("utf-8") for s in stops[i] if s),
                    self._sampler(temperatures[i], seeds[i]),
                )
                for i in range(len(prompts))
            ]
            try:
                for seq in seqs:
                    if grammars and grammars[seq.index]:
                        seq.grammar = self._grammar(grammars[seq.index])
                    if code_prefixes and code_prefixes[seq.index] is not None:
                        seq.code_prefix = code_prefixes[seq.index]
                        seq.line_grammar = self._clone(seq.grammar)
                self._ctx.set_n_threads(*self._threads)
                evaluated = self._prefill(seqs, cancel, reuse)
                # Token steps are small: the decode thread count (a second thread spinning on
                # a busy 2-core machine made each 5-token step 25x slower).
                self._ctx.set_n_threads(self._threads[0], self._threads[0])
                self._decode_loop(seqs, cancel)
            finally:
                for seq in seqs:
                    seq.sampler.close()
                    for sampler in (seq.grammar, seq.line_grammar):
                        if sampler is not None:
                            self._lc.llama_sampler_free(sampler)
                self._forget(len(self._cached) if reuse else 0)
            seconds = time.perf_counter() - started
            stats = self.stats
            stats.batches += 1
            stats.widths.append(len(seqs))
            stats.generations += len(seqs)
            stats.prompt_tokens += sum(len(p) for p in prompts)
            stats.prompt_tokens_evaluated += evaluated
            stats.completion_tokens += sum(len(s.completion) + s.discarded for s in seqs)
            stats.decode_seconds += seconds
            return [
                Generation(
                    text=s.text.decode("utf-8", errors="ignore"),
                    prompt_tokens=len(s.tokens),
                    completion_tokens=len(s.completion) + s.discarded,
                    seconds=seconds,
                )
                for s in seqs
            ]

    def _prefill(self, seqs: list[_Seq], cancel: threading.Event | None, reuse: bool) -> int:
        """Evaluate the prompts: the shared prefix once (cached parts not at all), copied to
        every sequence, then each prompt's own suffix; samples each sequence's first token.
        Returns the prompt tokens evaluated."""
        prompts = [s.tokens for s in seqs]
        shared = min(_common_prefix(prompts), min(len(p) for p in prompts) - 1)
        prefix = prompts[0][:shared]
        cached = _common_prefix([self._cached, prefix]) if reuse else 0
        self._forget(cached)
        evaluated = 0
        # Without reuse every sequence evaluates the prefix itself, in the same chunks, so
        # the two ways differ only in what they compute, not in how.
        for seq in seqs if not reuse else seqs[:1]:
            todo = [(t, cached + i, seq.index, False) for i, t in enumerate(prefix[cached:])]
            for start in range(0, len(todo), self.n_batch):
                _check(cancel)
                self._decode(todo[start : start + self.n_batch])
            evaluated += len(todo)
        self._cached = list(prefix) if reuse else []
        for seq in seqs[1:]:
            if shared and reuse:
                self._lc.llama_memory_seq_cp(self._mem, 0, seq.index, -1, -1)
        items: list[tuple[int, int, int, bool]] = []
        owners: list[_Seq | None] = []
        for seq in seqs:
            suffix = seq.tokens[shared:]
            for j, token in enumerate(suffix):
                last = j == len(suffix) - 1
                items.append((token, shared + j, seq.index, last))
                owners.append(seq if last else None)
        for start in range(0, len(items), self.n_batch):
            _check(cancel)
            chunk = items[start : start + self.n_batch]
            self._decode(chunk)
            for k, owner in enumerate(owners[start : start + self.n_batch]):
                if owner is not None:
                    self._sample(owner, k)
        return evaluated + len(items)

    def _decode_loop(self, seqs: list[_Seq], cancel: threading.Event | None) -> None:
        while True:
            live = [s for s in seqs if not s.done]
            if not live:
                return
            _check(cancel)
            items = []
            for k, seq in enumerate(live):
                position = len(seq.tokens) + len(seq.completion) - 1
                last = seq.completion[-1] if seq.completion else seq.tokens[-1]
                items.append((last, position, seq.index, True))
                seq.logits_at = k
            self._decode(items)
            for seq in live:
                self._sample(seq, seq.logits_at)

    def _sample(self, seq: _Seq, idx: int) -> None:
        """Sample the sequence's next token from logits row ``idx``; mark it done when it ends."""
        if seq.grammar is None:
            token = self._lc.llama_sampler_sample(seq.sampler.sampler, self._ctx.ctx, idx)
        else:
            token = self._sample_constrained(seq, idx)
        if self._lc.llama_vocab_is_eog(self._vocab, token):
            seq.done = True
            return
        if seq.grammar is not None:
            self._lc.llama_sampler_accept(seq.grammar, token)
        seq.completion.append(token)
        text = self._llama.detokenize(seq.completion, prev_tokens=seq.tokens)
        seq.text = text
        for stop in seq.stop:
            at = text.find(stop)
            if at >= 0:
                seq.text = text[:at]
                seq.done = True
                return
        if seq.code_prefix is not None and text.count(b"\n") > seq.newlines:
            self._check_line(seq)
        elif seq.code_prefix is not None and len(text) - text.rfind(b"\n") > MAX_LINE_BYTES:
            self._take_back(seq)  # a runaway line: the model rambling on, not code
        if len(seq.completion) + seq.discarded >= seq.max_tokens:
            seq.done = True

    def _check_line(self, seq: _Seq) -> None:
        """A line of a syntax-checked reply was finished: keep it if the function can still
        be Python, else take it back (tokens, KV cells, grammar state) to be written again, or
        stop the reply after ``MAX_LINE_RETRIES`` tries."""
        text = seq.text
        lines = text[: text.rfind(b"\n") + 1].decode("utf-8", errors="ignore")
        if syntax_state(f"{seq.code_prefix}{lines}") != "invalid":
            seq.line_start, seq.newlines, seq.retries = len(seq.completion), text.count(b"\n"), 0
            if seq.grammar is not None:
                self._lc.llama_sampler_free(seq.line_grammar)
                seq.line_grammar = self._clone(seq.grammar)
            return
        self._take_back(seq)

    def _take_back(self, seq: _Seq) -> None:
        """Drop the line being written (tokens, KV cells, grammar state) to be written again,
        or stop the reply after ``MAX_LINE_RETRIES`` tries."""
        if seq.retries >= MAX_LINE_RETRIES:
            seq.done = True  # the reply cannot parse past this line: stop paying for it
            return
        seq.retries += 1
        self.stats.lines_taken_back += 1
        seq.discarded += len(seq.completion) - seq.line_start
        del seq.completion[seq.line_start :]
        # The last kept token is decoded again for the logits of the line's first token.
        self._lc.llama_memory_seq_rm(
            self._mem, seq.index, len(seq.tokens) + len(seq.completion) - 1, -1
        )
        seq.text = self._llama.detokenize(seq.completion, prev_tokens=seq.tokens)
        if seq.grammar is not None:
            self._lc.llama_sampler_free(seq.grammar)
            seq.grammar = self._clone(seq.line_grammar)

    def _all_tokens(self, idx: int) -> Any:
        """Logits row ``idx`` as a fresh ``llama_token_data_array`` over the whole vocabulary
        (token order, unsorted: what ``llama_sampler_sample`` builds)."""
        lc = self._lc
        row = np.ctypeslib.as_array(
            lc.llama_get_logits_ith(self._ctx.ctx, idx), shape=(len(self._ids),)
        )
        buffer = self._candidates
        buffer["id"] = self._ids  # samplers sort in place
        buffer["logit"] = row
        buffer["p"] = 0.0
        data = buffer.ctypes.data_as(ctypes.POINTER(lc.llama_token_data))
        return lc.llama_token_data_array(data=data, size=len(buffer), selected=-1, sorted=False)

    def _sample_constrained(self, seq: _Seq, idx: int) -> int:
        """``llama_sampler_sample`` with the grammar checked on the sampled token only; a
        rejected token means: filter every token by the grammar, then sample again."""
        lc = self._lc
        chain = seq.sampler.sampler
        cur = self._all_tokens(idx)
        lc.llama_sampler_apply(chain, ctypes.byref(cur))
        token = int(cur.data[cur.selected].id)
        one = (lc.llama_token_data * 1)(lc.llama_token_data(token, 1.0, 0.0))
        check = lc.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        lc.llama_sampler_apply(seq.grammar, ctypes.byref(check))
        if math.isinf(one[0].logit):
            self.stats.grammar_rejections += 1
            cur = self._all_tokens(idx)
            lc.llama_sampler_apply(seq.grammar, ctypes.byref(cur))
            lc.llama_sampler_apply(chain, ctypes.byref(cur))
            token = int(cur.data[cur.selected].id)
        lc.llama_sampler_accept(chain, token)
        return token


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


def _common_prefix(sequences: list[list[int]]) -> int:
    if not sequences:
        return 0
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for i in range(n):
        token = first[i]
        if any(s[i] != token for s in sequences[1:]):
            return i
    return n


__all__ = ["BatchStats", "Batcher"]
