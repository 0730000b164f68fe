"""Prompt-lookup speculation for the single-stream path (``speculativeTokens`` > 0).

A rewrite copies much of its prompt (names, loops, the function's own lines). ``PromptLookup``
drafts the next tokens by finding the text's last few tokens earlier in the prompt or the reply
and proposing what followed them there; llama-cpp-python's ``Llama.generate`` evaluates the
sampled token and the draft in one decode, samples every position with the usual sampler chain
(one draw each, the same seed) and keeps the draft up to the first token the sampler did not
pick. The kept tokens are exactly those the sampler chose, so a draft never changes what is
sampled; what can differ from plain decoding is the logits themselves, since llama.cpp's
batched kernels round differently from single-token ones (up to ~0.9 logit on the embedded
model): greedy output is the same, seeded sampling is equivalent in distribution but not token
for token (docs/inference.md).

``SpeculativeLlama`` replaces ``Llama.eval`` for that loop: llama-cpp-python switches
``logits_all`` on whenever a draft model is set, which copies every prompt token's logits to a
host array of ``n_ctx x n_vocab`` floats (and fails past ``n_batch`` tokens when that array
was allocated without it). Here logits are requested only where they are sampled: every
position of a draft step, the last position of a prompt. Draft steps also run on the decode
thread count, as ``batch.py``'s token steps do (a second thread spinning on a busy 2-core
machine made small batches many times slower).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp.llama_speculative import LlamaDraftModel


class PromptLookup(LlamaDraftModel):
    """Up to ``tokens`` draft tokens: what followed the most recent earlier occurrence of the
    last ``max_ngram`` (down to ``min_ngram``) tokens. Single tokens are not looked up: on the
    embedded model their drafts were mostly rejected (docs/inference.md)."""

    def __init__(self, tokens: int, *, max_ngram: int = 3, min_ngram: int = 2):
        self.tokens = tokens
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram

    def __call__(self, input_ids: npt.NDArray[np.intc], /, **kwargs: Any) -> npt.NDArray[np.intc]:
        ids = np.asarray(input_ids)
        for n in range(min(self.max_ngram, len(ids) - 1), self.min_ngram - 1, -1):
            # windows over ids[:-1]: every match has at least one token after it, and the
            # tail itself is not a match
            windows = np.lib.stride_tricks.sliding_window_view(ids[:-1], n)
            hits = np.flatnonzero((windows == ids[-n:]).all(axis=1))
            if len(hits):
                start = int(hits[-1]) + n
                return ids[start : start + self.tokens].astype(np.intc)
        return np.empty(0, dtype=np.intc)


class SpeculativeLlama(llama_cpp.Llama):  # type: ignore[misc]
    """``Llama`` with a ``PromptLookup`` draft of ``speculative_tokens``: logits only where
    sampled, draft steps on the decode thread count (see the module's docstring)."""

    def __init__(self, *args: Any, speculative_tokens: int, **kwargs: Any):
        super().__init__(
            *args, draft_model=PromptLookup(speculative_tokens), logits_all=False, **kwargs
        )
        self.speculative_tokens = speculative_tokens
        self.steps = 0
        """Draft steps evaluated (one decode each: the sampled token and its draft)."""
        self.drafted = 0
        """Tokens drafted in those steps."""

    def eval(self, tokens: Sequence[int]) -> None:
        # A draft step is the sampled token and at most ``speculative_tokens`` drafted ones;
        # anything longer is a prompt (a short prompt suffix gets every logit: harmless).
        step = len(tokens) <= 1 + self.speculative_tokens
        if step:
            self.steps += 1
            self.drafted += len(tokens) - 1
        params = self.context_params
        self._ctx.set_n_threads(
            params.n_threads, params.n_threads if step else params.n_threads_batch
        )
        self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
        for i in range(0, len(tokens), self.n_batch):
            batch = tokens[i : min(len(tokens), i + self.n_batch)]
            n_past = self.n_tokens
            self._batch.set_batch(batch=batch, n_past=n_past, logits_all=step)
            self._ctx.decode(self._batch)
            self.input_ids[n_past : n_past + len(batch)] = batch
            self.n_tokens += len(batch)
            self._requires_eval = False
