"""The ``openai`` backend: any OpenAI-compatible chat-completions endpoint over plain HTTP.

llama.cpp's ``llama-server``, llama-cpp-python's ``llama_cpp.server``, vLLM, Ollama or a hosted
endpoint the user chooses: one deployment can serve every developer's editor. Settings:
``openaiBaseUrl`` (e.g. ``http://127.0.0.1:8080/v1``), ``openaiModel`` (null: the server's
first model), ``openaiApiKeyEnv`` (the *name* of the environment variable holding the key; the
key itself is never stored in settings), ``openaiConcurrency`` and ``openaiTimeoutSeconds``.

* The model name is checked once against ``GET /models``: a wrong name is a clear error that
  lists what the server serves; an unreachable server is one too (after the retries).
* The candidates of a round go out together: requests that differ only in their seed are
  sent as one request with ``n`` when the server honours it (it returns ``n`` choices), else
  as parallel requests, at most ``openaiConcurrency`` at a time.
* Connection failures, timeouts, 429 and 5xx answers are retried with exponential backoff
  (``RETRIES`` times); other 4xx answers are errors at once.
* Token counts come from the server's ``usage``.
* Chat APIs cannot continue a prefilled assistant reply, so the prompt's prefill (an opening
  code fence) is not sent: the reply is aligned to it afterwards (the text after the fence the
  model wrote), and stop sequences that occur in the prefill are applied after the reply
  instead of by the server.
* Cancellation closes the open connections at once (``Cancelled``); the server may finish the
  generation it started.
* A server on this machine (localhost) shares its cores with the timing rounds, so its
  generations take the compute lock like the llama backend's; a remote one does not.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from speedsmith import compute
from speedsmith.errors import Cancelled, ModelError
from speedsmith.llm.base import Generation, GenerationRequest, Prompt

RETRIES = 3
"""Retries of a failed request (connection refused or reset, timeout, 429, 5xx)."""
BACKOFF_SECONDS = 0.5
"""First wait before a retry; doubled each time."""
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class _HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible server (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 4,
        timeout_seconds: float = 120.0,
        retries: int = RETRIES,
        backoff_seconds: float = BACKOFF_SECONDS,
    ):
        parsed = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ModelError(
                f"openaiBaseUrl {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8080/v1)"
            )
        self.base_url = base_url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._path = parsed.path
        self.model = model or None
        self._api_key_env = api_key_env
        self.concurrency = max(1, concurrency)
        self.batch_width = self.concurrency
        """The search generates this many candidates of a round together."""
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.local = self._host in LOCAL_HOSTS
        self.name = f"openai:{self.model or '?'}@{parsed.netloc}"
        self._checked = False
        self._check_lock = threading.Lock()
        self._n_supported: bool | None = None
        self._open: set[http.client.HTTPConnection] = set()
        self._open_lock = threading.Lock()
        self.in_flight = 0
        """Requests sent and not yet answered (tests wait on it)."""
        self.requests_sent = 0
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="speedsmith-openai")

    # -- HTTP ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key_env:
            key = os.environ.get(self._api_key_env, "")
            if key:
                headers["Authorization"] = f"Bearer {key}"
        return headers

    def _connection(self) -> http.client.HTTPConnection:
        secure = self._scheme == "https"
        kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
        return kind(self._host, self._port, timeout=self.timeout_seconds)

    def _request_once(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        connection = self._connection()
        with self._open_lock:
            self._open.add(connection)
            self.in_flight += 1
            self.requests_sent += 1
        try:
            data = json.dumps(body).encode("utf-8") if body is not None else None
            connection.request(method, self._path + path, body=data, headers=self._headers())
            response = connection.getresponse()
            raw = response.read().decode("utf-8", errors="replace")
            if response.status >= 400:
                raise _HttpError(response.status, raw)
            try:
                return json.loads(raw)
            except ValueError as err:
                raise ModelError(f"{self.base_url}{path} answered with invalid JSON") from err
        finally:
            with self._open_lock:
                self._open.discard(connection)
                self.in_flight -= 1
            connection.close()

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None, cancel: threading.Event | None
    ) -> Any:
        """One request with retries; ModelError when it cannot succeed, Cancelled on cancel."""
        delay = self.backoff_seconds
        last = ""
        for attempt in range(self.retries + 1):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            try:
                return self._request_once(method, path, body)
            except _HttpError as err:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled") from err
                if err.status in _RETRYABLE_STATUS:
                    last = str(err)
                else:
                    raise ModelError(self._explain(err)) from err
            except (OSError, http.client.HTTPException) as err:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("cancelled") from err
                last = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            if attempt < self.retries:
                if cancel is not None:
                    if cancel.wait(delay):
                        raise Cancelled("cancelled")
                else:
                    time.sleep(delay)
                delay *= 2
        raise ModelError(
            f"the OpenAI-compatible server at {self.base_url} did not answer "
            f"{method} {path} ({self.retries + 1} tries): {last}; is it running? "
            "(check openaiBaseUrl)"
        )

    def _explain(self, err: _HttpError) -> str:
        detail = err.body
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            payload = json.loads(err.body)
            message = payload.get("error", payload)
            detail = message.get("message", str(message)) if isinstance(message, dict) else message
        if err.status in (401, 403):
            hint = f"set the API key in ${self._api_key_env}" if self._api_key_env else ""
            return f"{self.base_url} refused the request (HTTP {err.status}): {detail} {hint}"
        if err.status == 404 and "model" in str(detail).lower():
            return f"{self.base_url} does not serve model {self.model!r}: {detail}"
        return f"{self.base_url} answered HTTP {err.status}: {str(detail)[:300]}"

    def abort(self) -> None:
        """Close every open connection (their requests fail at once)."""
        with self._open_lock:
            for connection in list(self._open):
                sock = connection.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    # -- the model -------------------------------------------------------------------------

    def served_models(self, cancel: threading.Event | None = None) -> list[str]:
        payload = self._request("GET", "/models", None, cancel)
        data = payload.get("data", []) if isinstance(payload, dict) else []
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]

    def check(self, cancel: threading.Event | None = None) -> None:
        """Reach the server and check the model name (once); ModelError when either fails."""
        with self._check_lock:
            if self._checked:
                return
            served = self.served_models(cancel)
            if self.model is None:
                if not served:
                    raise ModelError(f"{self.base_url} serves no model; set openaiModel")
                self.model = served[0]
            elif served and self.model not in served:
                raise ModelError(
                    f"{self.base_url} does not serve model {self.model!r} "
                    f"(check openaiModel); it serves: {', '.join(served)}"
                )
            self.name = f"openai:{self.model}@{urllib.parse.urlsplit(self.base_url).netloc}"
            self._checked = True

    def close(self) -> None:
        self.abort()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- generation ------------------------------------------------------------------------

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
        request = GenerationRequest(prompt, max_tokens, temperature, seed, stop)
        return self.generate_batch([request], cancel=cancel)[0]

    def generate_batch(
        self, requests: list[GenerationRequest], *, cancel: threading.Event | None = None
    ) -> list[Generation]:
        """Every request's generation, in order, concurrently (see the module docstring)."""
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        self.check(cancel)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, r in enumerate(requests):
            key = (r.prompt, r.max_tokens, r.temperature, r.stop)
            groups.setdefault(key, []).append(index)
        results: list[Generation | None] = [None] * len(requests)
        stop = threading.Event()  # set on cancel or a failed request: the others give up
        with self._compute():
            jobs: list[tuple[list[int], Future[list[Generation]]]] = []
            for indices in groups.values():
                chunks = [indices] if self._n_supported is not False else [[i] for i in indices]
                for chunk in chunks:
                    job = self._pool.submit(self._complete, [requests[i] for i in chunk], stop)
                    jobs.append((chunk, job))
            self._wait([job for _, job in jobs], cancel, stop)
            for chunk, job in jobs:
                made = job.result()
                for index, generation in zip(chunk, made, strict=False):
                    results[index] = generation
                missing = chunk[len(made) :]
                if missing:  # the server ignored ``n``: the rest one request each
                    self._n_supported = False
                    extra = [
                        (i, self._pool.submit(self._complete, [requests[i]], stop)) for i in missing
                    ]
                    self._wait([f for _, f in extra], cancel, stop)
                    for i, future in extra:
                        results[i] = future.result()[0]
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    @contextlib.contextmanager
    def _compute(self) -> Iterator[None]:
        if self.local:
            with compute.exclusive():
                yield
        else:
            yield

    def _wait(
        self, futures: list[Future[Any]], cancel: threading.Event | None, stop: threading.Event
    ) -> None:
        """Wait for the futures; on cancel or a failure stop the others (``stop``) and raise."""
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.05, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    self._stop_all(stop, pending)
                    raise error
            if cancel is not None and cancel.is_set():
                self._stop_all(stop, pending)
                raise Cancelled("cancelled")

    def _stop_all(self, stop: threading.Event, pending: set[Future[Any]]) -> None:
        """Stop the batch's other requests: no retries, open connections closed."""
        stop.set()
        for other in pending:
            other.cancel()
        self.abort()

    def _complete(
        self, requests: list[GenerationRequest], cancel: threading.Event | None
    ) -> list[Generation]:
        """One chat completion for ``len(requests)`` samples of one prompt (``n``)."""
        first = requests[0]
        prompt = first.prompt
        messages: list[dict[str, str]] = [{"role": "system", "content": prompt.system}]
        for user, assistant in prompt.examples:
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": assistant})
        messages.append({"role": "user", "content": prompt.user})
        server_stops = [s for s in first.stop if s not in prompt.prefill]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": first.max_tokens,
            "temperature": first.temperature,
            "top_p": 0.95,
            "seed": first.seed,
        }
        if server_stops:
            body["stop"] = server_stops[:4]
        if len(requests) > 1:
            body["n"] = len(requests)
        started = time.perf_counter()
        payload = self._request("POST", "/chat/completions", body, cancel)
        seconds = time.perf_counter() - started
        try:
            choices = sorted(payload["choices"], key=lambda c: int(c.get("index", 0)))
            texts = [str(c["message"]["content"] or "") for c in choices][: len(requests)]
            usage = payload.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens", 0))
            completion_tokens = int(usage.get("completion_tokens", 0))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ModelError(f"{self.base_url} answered without choices: {err}") from err
        # ``usage`` covers every choice: the prompt was evaluated once (charged to the first),
        # completion tokens are shared out by the length of each choice.
        weights = [max(1, len(t)) for t in texts]
        shares = [completion_tokens * w // sum(weights) for w in weights]
        if shares:
            shares[0] += completion_tokens - sum(shares)
        return [
            Generation(
                text=align_to_prefill(text, prompt, first.stop),
                prompt_tokens=prompt_tokens if i == 0 else 0,
                completion_tokens=min(share, first.max_tokens),
                seconds=seconds,
            )
            for i, (text, share) in enumerate(zip(texts, shares, strict=True))
        ]


def align_to_prefill(reply: str, prompt: Prompt, stop: tuple[str, ...]) -> str:
    """The part of a whole chat reply that would have followed ``prompt.prefill``.

    The reply usually repeats the prefill (an opening code fence, ``1.``): the text after it.
    A reply with another opening fence (```` ```py ````, a bare ```` ``` ````): the text after
    that fence's line. A reply without any: taken as it is. Then ``prefill_code`` is dropped
    when the reply repeats it, and the text is cut at the first stop sequence.
    """
    text = reply
    prefill = prompt.prefill
    if prefill:
        at = text.find(prefill)
        fence = prefill.lstrip()[:3]
        if at >= 0:
            text = text[at + len(prefill) :]
        elif fence == "```" and "```" in text:
            after = text.split("```", 1)[1]
            text = after.split("\n", 1)[1] if "\n" in after else ""
        else:
            text = text.lstrip()
    if prompt.prefill_code and text.startswith(prompt.prefill_code):
        text = text[len(prompt.prefill_code) :]
    for marker in stop:
        if marker:
            text = text.split(marker)[0]
    return text


def from_settings(settings: Any) -> OpenAIBackend:
    """The backend for ``settings`` (a ``Settings``)."""
    return OpenAIBackend(
        settings.openai_base_url,
        model=settings.openai_model,
        api_key_env=settings.openai_api_key_env,
        concurrency=settings.openai_concurrency,
        timeout_seconds=settings.openai_timeout_seconds,
    )


_LOADED: dict[tuple[Any, ...], OpenAIBackend] = {}
_LOAD_LOCK = threading.Lock()


def load(settings: Any) -> OpenAIBackend:
    """The backend for ``settings``, shared between runs with the same configuration (the
    model check is done once)."""
    key = (
        settings.openai_base_url,
        settings.openai_model,
        settings.openai_api_key_env,
        settings.openai_concurrency,
        settings.openai_timeout_seconds,
    )
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = from_settings(settings)
        return _LOADED[key]
