"""The backend interface every search strategy talks to."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Prompt:
    """A chat prompt; the assistant's reply starts with ``prefill`` (written for the model)."""

    system: str
    user: str
    examples: tuple[tuple[str, str], ...] = ()
    """Worked examples: (user, assistant) turns shown before ``user``."""
    prefill: str = ""
    prefill_code: str = ""
    """The part of ``prefill`` that is code (after the opening fence): the reply's code is
    ``prefill_code + generation.text``."""


@dataclass(frozen=True)
class Generation:
    text: str
    """What the model wrote after the prefill (the stop sequence is not included)."""
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class Backend(Protocol):
    name: str
    """Shown in reports, e.g. the GGUF file name."""

    def generate(
        self,
        prompt: Prompt,
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: tuple[str, ...],
        cancel: threading.Event | None = None,
    ) -> Generation: ...
