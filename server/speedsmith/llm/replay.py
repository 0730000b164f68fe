"""The replay backend: serves a fixed pool of recorded candidates instead of a model.

Used for fast, deterministic tests of the search bookkeeping and the editors, and by
``speedsmith bench --backend replay``. The pool is a JSON file ``{"candidates": [source, ...]}``;
the i-th call returns the i-th candidate (cycling). Token counts are whitespace-split words.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from speedsmith.errors import Cancelled, ModelError
from speedsmith.llm.base import Generation, Prompt


class ReplayBackend:
    def __init__(self, candidates: list[str], name: str = "replay"):
        if not candidates:
            raise ModelError("the replay pool has no candidates")
        self.name = name
        self._candidates = candidates
        self._next = 0
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | None) -> ReplayBackend:
        if not path:
            raise ModelError("backend 'replay' needs the replayFile setting")
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            candidates = [str(c) for c in data["candidates"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"cannot read replay file {path}: {err}") from err
        return cls(candidates, name=f"replay:{Path(path).name}")

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: tuple[str, ...],
        cancel: threading.Event | None = None,
    ) -> Generation:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        with self._lock:
            text = self._candidates[self._next % len(self._candidates)]
            self._next += 1
        # The pool holds whole functions; the model would continue after the prefill's code.
        if prompt.prefill_code and text.startswith(prompt.prefill_code):
            text = text[len(prompt.prefill_code) :]
        for marker in stop:
            text = text.split(marker)[0]
        words = len(text.split())
        return Generation(
            text=text,
            prompt_tokens=len((prompt.system + prompt.user).split()),
            completion_tokens=min(words, max_tokens),
            seconds=0.0,
        )
