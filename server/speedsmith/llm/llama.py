"""The llama.cpp backend (llama-cpp-python): local GGUF models, GPU offload when built for it.

The chat template comes from the GGUF's own metadata; the assistant reply is prefilled (e.g.
with an opening code fence and the function's header) so a small model cannot break the format
before it starts. Cancellation is checked on every token through ``stopping_criteria``.
``speculativeTokens`` > 0 drafts tokens from the prompt in ``generate`` (``speculative.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from speedsmith import compute
from speedsmith.errors import Cancelled, ModelError
from speedsmith.llm.base import Generation, GenerationRequest, Prompt
from speedsmith.llm.model import resolve_model

_LOADED: dict[tuple[Any, ...], LlamaBackend] = {}
_LOAD_LOCK = threading.Lock()


class LlamaBackend:
    def __init__(
        self,
        path: Path,
        *,
        n_gpu_layers: int,
        n_ctx: int,
        n_threads: int | None,
        batch_width: int = 1,
        speculative_tokens: int = 0,
    ):
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as err:  # pragma: no cover - a broken install
            raise ModelError(f"llama-cpp-python is not installed: {err}") from err
        self.name = path.name
        self._lock = threading.Lock()
        if not llama_cpp.llama_supports_gpu_offload():
            n_gpu_layers = 0  # a CPU-only build: nothing to offload
        self.n_gpu_layers = n_gpu_layers
        self.batch_width = max(1, batch_width)
        """Candidates of a round generated together (``generate_batch``); 1: one at a time."""
        self._batcher: Any = None
        self.speculative_tokens = max(0, speculative_tokens)
        """Prompt-lookup draft tokens per step of ``generate`` (``speculative.py``); 0: off."""
        self._llama: Any
        options: dict[str, Any] = dict(
            model_path=str(path), n_gpu_layers=n_gpu_layers, n_ctx=n_ctx, n_threads=n_threads
        )
        try:
            with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
                if self.speculative_tokens:
                    from speedsmith.llm.speculative import SpeculativeLlama

                    self._llama = SpeculativeLlama(
                        **options, seed=0, verbose=False, speculative_tokens=speculative_tokens
                    )
                else:
                    self._llama = llama_cpp.Llama(**options, seed=0, verbose=False)
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelError(f"could not load model {path}: {err}") from err
        metadata = self._llama.metadata
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{path.name} has no chat template in its metadata")
        model: Any = self._llama._model  # the model's own token strings
        eos = model.token_get_text(self._llama.token_eos())
        bos = model.token_get_text(self._llama.token_bos())
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.n_ctx = n_ctx

    def close(self) -> None:
        with self._lock:
            if self._batcher is not None:
                self._batcher.close()
                self._batcher = None
            self._llama.close()

    def batcher(self) -> Any:
        """The batch engine (``batch.Batcher``): a second context, ``batch_width`` sequences."""
        if self._batcher is None:
            from speedsmith.llm.batch import Batcher

            self._batcher = Batcher(self._llama, n_ctx=self.n_ctx, n_seq=self.batch_width)
        return self._batcher

    def generate_batch(
        self, requests: list[GenerationRequest], *, cancel: threading.Event | None = None
    ) -> list[Generation]:
        """The requests' generations, decoded together in one llama.cpp batch (one sequence
        each, the shared prompt prefix evaluated once and copied; ``batch.py``). Requests
        beyond ``batch_width``, or beyond what the context holds, go in further batches."""
        out: list[Generation] = []
        with self._lock, compute.exclusive():
            batcher = self.batcher()
            prompts = [batcher.tokenize(self.render(r.prompt)) for r in requests]
            start = 0
            while start < len(requests):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled")
                width = min(self.batch_width, len(requests) - start)
                while width > 1 and not batcher.fits(
                    prompts[start : start + width],
                    [r.max_tokens for r in requests[start : start + width]],
                ):
                    width -= 1
                chunk = requests[start : start + width]
                room = self.n_ctx - len(prompts[start]) - 8
                if width == 1 and room < 16:
                    raise ModelError(
                        f"the prompt ({len(prompts[start])} tokens) does not fit the context "
                        f"window ({self.n_ctx}); raise nCtx or optimise a smaller function"
                    )
                out += batcher.generate(
                    prompts[start : start + width],
                    max_tokens=[min(r.max_tokens, room) for r in chunk],
                    temperatures=[r.temperature for r in chunk],
                    seeds=[r.seed for r in chunk],
                    stops=[r.stop for r in chunk],
                    cancel=cancel,
                    grammars=[r.prompt.grammar for r in chunk],
                    code_prefixes=[_code_prefix(r.prompt) for r in chunk],
                )
                start += width
        return out

    def render(self, prompt: Prompt) -> str:
        messages: list[Any] = [{"role": "system", "content": prompt.system}]
        for user, assistant in prompt.examples:
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
        messages.append({"role": "user", "content": prompt.user})
        rendered = self._formatter(messages=messages).prompt
        return rendered + prompt.prefill

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

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
        import llama_cpp

        if prompt.grammar:  # constrained: sampled by the batch engine (``batch.py``)
            request = GenerationRequest(prompt, max_tokens, temperature, seed, stop)
            return self.generate_batch([request], cancel=cancel)[0]

        def cancelled(_ids: Any, _logits: Any) -> bool:
            return cancel is not None and cancel.is_set()

        text = self.render(prompt)
        started = time.perf_counter()
        with self._lock, compute.exclusive():
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            prompt_tokens = self.count_tokens(text)
            room = self.n_ctx - prompt_tokens - 8
            if room < 16:
                raise ModelError(
                    f"the prompt ({prompt_tokens} tokens) does not fit the context window "
                    f"({self.n_ctx}); raise nCtx or optimise a smaller function"
                )
            result: Any = self._llama.create_completion(
                prompt=text,
                max_tokens=min(max_tokens, room),
                temperature=temperature,
                top_p=0.95,
                top_k=40,
                repeat_penalty=1.05,
                seed=seed,
                stop=list(stop),
                stopping_criteria=llama_cpp.StoppingCriteriaList([cancelled]),
            )
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        usage = result["usage"]
        return Generation(
            text=result["choices"][0]["text"],
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
            seconds=time.perf_counter() - started,
        )


def _code_prefix(prompt: Prompt) -> str | None:
    """The code a constrained reply continues (the prefilled header, or '' for statements at
    column 0), to syntax-check its lines against (``batch.Batcher``); None: not checked."""
    return prompt.prefill_code if prompt.grammar and prompt.check_lines else None


@atexit.register
def _close_all() -> None:
    """Free models before interpreter teardown (llama-cpp-python's __del__ fails late)."""
    for backend in _LOADED.values():
        backend.close()
    _LOADED.clear()


def load(
    model_path: str | None,
    *,
    n_gpu_layers: int,
    n_ctx: int,
    n_threads: int | None,
    batch_width: int = 1,
    speculative_tokens: int = 0,
) -> LlamaBackend:
    """A loaded backend, shared between runs with the same configuration."""
    path = resolve_model(model_path)
    key = (
        str(path),
        path.stat().st_mtime_ns,
        n_gpu_layers,
        n_ctx,
        n_threads,
        batch_width,
        speculative_tokens,
    )
    with _LOAD_LOCK:
        if key not in _LOADED:
            _close_all()  # one model in memory at a time
            _LOADED[key] = LlamaBackend(
                path,
                n_gpu_layers=n_gpu_layers,
                n_ctx=n_ctx,
                n_threads=n_threads,
                batch_width=batch_width,
                speculative_tokens=speculative_tokens,
            )
        return _LOADED[key]
