"""The openai backend against a real OpenAI-compatible server on localhost (llama_cpp.server
serving the embedded model), plus its pure parts (aligning a chat reply to the prefill, the
settings)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from local_server import LocalServer, free_port, start_server

from speedsmith.errors import Cancelled, ModelError
from speedsmith.llm.base import GenerationRequest, Prompt, generate_batch
from speedsmith.llm.openai import OpenAIBackend, align_to_prefill
from speedsmith.search.prompt import FENCE, build_prompt
from speedsmith.settings import DEFAULTS, merge

HANG_SECONDS = 300.0

CODE_PROMPT = Prompt(
    system="You rewrite Python functions to be faster. Reply with one code block.",
    user="Make this faster:\n```python\ndef total(xs):\n    s = 0\n    for x in xs:\n"
    "        s += x\n    return s\n```",
    prefill=f"{FENCE}python\n",
)


# -- pure parts ------------------------------------------------------------------------------


def test_align_takes_the_code_after_the_fence_and_cuts_at_the_stop():
    reply = "Sure! Here it is:\n```python\ndef total(xs):\n    return sum(xs)\n```\nDone."
    assert align_to_prefill(reply, CODE_PROMPT, (FENCE,)) == "def total(xs):\n    return sum(xs)\n"


def test_align_handles_another_fence_and_bare_code():
    assert align_to_prefill("```py\ndef f():\n    pass\n```", CODE_PROMPT, (FENCE,)) == (
        "def f():\n    pass\n"
    )
    assert align_to_prefill("\ndef f():\n    pass", CODE_PROMPT, (FENCE,)) == "def f():\n    pass"
    listed = Prompt(system="s", user="u", prefill="1.")
    assert align_to_prefill("1. Use sum\n2. Cache", listed, ()) == " Use sum\n2. Cache"
    coded = Prompt(system="s", user="u", prefill="```python\ndef f(", prefill_code="def f(")
    assert align_to_prefill("```python\ndef f(x):\n    pass\n```", coded, (FENCE,)) == (
        "x):\n    pass\n"
    )


def test_settings_accept_the_openai_backend_and_keep_the_key_env_out_of_projects():
    settings, warnings = merge(
        DEFAULTS,
        {"backend": "openai", "openaiBaseUrl": "http://gpu:8000/v1", "openaiConcurrency": 8},
        origin="workspace/configuration",
    )
    assert (settings.backend, settings.openai_base_url, settings.openai_concurrency) == (
        "openai",
        "http://gpu:8000/v1",
        8,
    )
    assert not warnings
    _, warnings = merge(DEFAULTS, {"openaiConcurrency": 0}, origin="x")
    assert warnings
    project, warnings = merge(
        DEFAULTS, {"openaiApiKeyEnv": "GITHUB_TOKEN"}, origin="/p/pyproject.toml"
    )
    assert project.openai_api_key_env == DEFAULTS.openai_api_key_env
    assert "cannot choose" in warnings[0]


EVIL = "https://attacker.example/v1"


@pytest.mark.parametrize(
    ("flags", "base_url"),
    [
        pytest.param([], DEFAULTS.openai_base_url, id="pyproject-alone"),
        pytest.param(
            ["--openai-base-url", "http://gpu:8000/v1"], "http://gpu:8000/v1", id="command-line"
        ),
    ],
)
def test_a_project_cannot_point_speedsmith_at_its_server(
    tmp_path: Path, flags: list[str], base_url: str
):
    """A cloned repository's pyproject.toml could otherwise send the code, and the key in
    ``SPEEDSMITH_OPENAI_API_KEY``, to a server of its choosing (docs/inference.md)."""
    import io

    from rich.console import Console

    from speedsmith.cli import _parser, settings_for

    (tmp_path / "pyproject.toml").write_text(
        f'[tool.speedsmith]\nbackend = "openai"\nopenaiBaseUrl = "{EVIL}"\n'
        'openaiApiKeyEnv = "GITHUB_TOKEN"\n',
        encoding="utf-8",
    )
    (tmp_path / "m.py").write_text("def f(x):\n    return x\n", encoding="utf-8")
    out = io.StringIO()
    args = _parser().parse_args(["optimize", f"{tmp_path / 'm.py'}::f", *flags])
    settings = settings_for(tmp_path / "m.py", args, Console(file=out, width=400))

    assert settings.backend == "openai"  # a project may still choose the backend
    assert settings.openai_base_url == base_url
    assert settings.openai_api_key_env == DEFAULTS.openai_api_key_env
    assert "'openaiBaseUrl' ignored: a project cannot choose it" in out.getvalue()


def test_a_bad_url_is_a_model_error():
    with pytest.raises(ModelError, match="not an http"):
        OpenAIBackend("ftp://example.org/v1")


def test_an_unreachable_server_is_a_clear_error_after_the_retries():
    backend = OpenAIBackend(
        f"http://127.0.0.1:{free_port()}/v1", retries=2, backoff_seconds=0.01, timeout_seconds=30
    )
    with pytest.raises(ModelError, match=r"did not answer GET /models \(3 tries\).*is it running"):
        backend.generate(CODE_PROMPT, max_tokens=16, temperature=0.5, seed=1, stop=(FENCE,))
    assert backend.requests_sent == 3


# -- against llama_cpp.server ---------------------------------------------------------------


@pytest.mark.real_model
def test_generates_code_with_usage_from_the_server(local_server: LocalServer):
    backend = OpenAIBackend(local_server.base_url, model=local_server.model, concurrency=2)
    generation = backend.generate(
        CODE_PROMPT, max_tokens=48, temperature=0.2, seed=3, stop=(FENCE,)
    )
    assert backend.name == f"openai:{local_server.model}@127.0.0.1:{local_server.port}"
    assert generation.prompt_tokens > 20
    assert 0 < generation.completion_tokens <= 48
    assert not generation.text.startswith(FENCE)
    assert FENCE not in generation.text


@pytest.mark.real_model
def test_a_batch_is_answered_in_order_and_is_repeatable_for_fixed_seeds(local_server: LocalServer):
    backend = OpenAIBackend(local_server.base_url, concurrency=3)  # model: the server's first
    requests = [GenerationRequest(CODE_PROMPT, 24, 0.9, seed, (FENCE,)) for seed in (1, 2, 3)]
    first = generate_batch(backend, requests)
    again = generate_batch(backend, requests)
    assert backend.model == local_server.model
    assert [g.text for g in first] == [g.text for g in again]
    single = backend.generate(CODE_PROMPT, max_tokens=24, temperature=0.9, seed=2, stop=(FENCE,))
    assert single.text == first[1].text
    assert all(g.completion_tokens > 0 for g in first)


@pytest.mark.real_model
def test_a_search_prompt_through_the_backend(local_server: LocalServer):
    from speedsmith.isolate import collect_context, find_function

    source = "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n"
    fn = find_function(source, "total")
    context = collect_context(source, fn)
    backend = OpenAIBackend(local_server.base_url)
    generation = backend.generate(
        build_prompt(fn, context), max_tokens=64, temperature=0.3, seed=0, stop=(FENCE,)
    )
    assert generation.completion_tokens > 0


@pytest.mark.real_model
def test_a_wrong_model_name_says_what_the_server_serves(local_server: LocalServer):
    backend = OpenAIBackend(local_server.base_url, model="gpt-17")
    with pytest.raises(ModelError, match=rf"does not serve model 'gpt-17'.*{local_server.model}"):
        backend.generate(CODE_PROMPT, max_tokens=8, temperature=0.5, seed=1, stop=(FENCE,))


@pytest.mark.real_model
def test_cancel_stops_a_request_in_flight(local_server: LocalServer):
    backend = OpenAIBackend(local_server.base_url, timeout_seconds=HANG_SECONDS)
    backend.check()
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            backend.generate(
                CODE_PROMPT, max_tokens=1500, temperature=1.5, seed=5, stop=(), cancel=cancel
            )
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    _wait_for(lambda: backend.in_flight > 0)
    cancel.set()
    worker.join(HANG_SECONDS)
    assert not worker.is_alive()
    assert outcome and isinstance(outcome[0], Cancelled)


@pytest.mark.real_model
def test_a_server_killed_mid_generation_is_a_clear_error(embedded_model: Path, tmp_path: Path):
    server = start_server(embedded_model, tmp_path / "server.log")
    try:
        backend = OpenAIBackend(
            server.base_url, retries=2, backoff_seconds=0.05, timeout_seconds=HANG_SECONDS
        )
        backend.check()
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                backend.generate(CODE_PROMPT, max_tokens=1500, temperature=1.5, seed=5, stop=())
            except BaseException as err:
                outcome.append(err)

        worker = threading.Thread(target=run)
        worker.start()
        _wait_for(lambda: backend.in_flight > 0)
        server.kill()
        worker.join(HANG_SECONDS)
        assert not worker.is_alive()
        assert outcome and isinstance(outcome[0], ModelError), outcome
        assert "did not answer POST /chat/completions" in str(outcome[0])
    finally:
        server.kill()


def _wait_for(condition) -> None:  # type: ignore[no-untyped-def]
    done = threading.Event()
    for _ in range(int(HANG_SECONDS / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition never held (hang)")
