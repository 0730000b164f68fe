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
    grammar: str = ""
    """GBNF the reply must follow ('' for none; ``grammar.code_grammar``). The llama backend
    samples under it; backends that cannot constrain decoding ignore it."""
    check_lines: bool = False
    """Check each finished line of a ``grammar`` reply with Python's parser: a line after
    which ``prefill_code`` + the reply can no longer be Python is written again
    (``grammar.syntax_state``; the llama backend's batch engine)."""


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


@dataclass(frozen=True)
class GenerationRequest:
    """One generation of a batch (``generate_batch``): the arguments of ``Backend.generate``."""

    prompt: Prompt
    max_tokens: int
    temperature: float
    seed: int
    stop: tuple[str, ...]


def batch_width(backend: object) -> int:
    """How many generations the backend makes well together (1: one at a time)."""
    width = getattr(backend, "batch_width", 1)
    return width if isinstance(width, int) and width > 1 else 1


def generate_batch(
    backend: Backend,
    requests: list[GenerationRequest],
    *,
    cancel: threading.Event | None = None,
) -> list[Generation]:
    """Every request's generation, in order: together where the backend has a
    ``generate_batch`` method (one llama.cpp batch, concurrent HTTP requests), else one after
    another. Results do not depend on the width: each request carries its own seed."""
    batched = getattr(backend, "generate_batch", None)
    if batched is not None and len(requests) > 1:
        result: list[Generation] = batched(requests, cancel=cancel)
        return result
    return [
        backend.generate(
            r.prompt,
            max_tokens=r.max_tokens,
            temperature=r.temperature,
            seed=r.seed,
            stop=r.stop,
            cancel=cancel,
        )
        for r in requests
    ]
