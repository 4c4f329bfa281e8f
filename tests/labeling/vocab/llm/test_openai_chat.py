"""The openai backend against a real local HTTP server speaking chat completions."""

import time

import pytest
from chat_completions_server import ChatCompletionsServer

from labeling.vocab.config import LLMConfig
from labeling.vocab.llm.backend import LLMError, Prompt, make_backend
from labeling.vocab.llm.openai_chat import retry_after_seconds
from labeling.vocab.llm.templates import TemplateBackend

KEY_ENV = "SOUNDRY_TEST_LLM_KEY"
SECRET = "sk-test-6c1f0e-very-secret"


def config(server: ChatCompletionsServer, **openai) -> LLMConfig:
    options = {
        "base_url": server.base_url,
        "api_key_env": None,
        "backoff_s": 0.01,
        "max_retries": 3,
        "timeout_s": 5.0,
        **openai,
    }
    return LLMConfig(backend="openai", model="test-model", openai=options)


def expected(text: str) -> str:
    return TemplateBackend(LLMConfig(), seed=0).answer(Prompt(text, {}, 5))


def test_retries_429_500_malformed_and_slow_answers():
    schedule = {"p429": ["429"], "p500": ["500", "500"], "bad": ["malformed"], "slow": ["slow"], "fine": []}

    def behaviour(text: str, attempt: int) -> str:
        return (schedule[text] + ["ok"])[attempt]

    with ChatCompletionsServer(behaviour, slow_s=2.0) as server:
        backend = make_backend(config(server, timeout_s=0.5), seed=0)
        prompts = [Prompt(text, {}) for text in schedule]
        started = time.perf_counter()
        answers = backend.generate(prompts)
        assert answers == [expected(text) for text in schedule]
        assert dict(server.attempts) == {"p429": 2, "p500": 3, "bad": 2, "slow": 2, "fine": 1}
        assert time.perf_counter() - started < 2.0  # the slow answer was abandoned, not waited for


def test_a_client_error_stops_at_once_with_the_servers_reason():
    with ChatCompletionsServer(lambda text, attempt: "400") as server:
        with pytest.raises(LLMError, match=r"HTTP 400 for model test-model: .*prompt rejected"):
            make_backend(config(server)).generate([Prompt("x", {})])
        assert server.attempts["x"] == 1


def test_retries_are_bounded():
    with ChatCompletionsServer(lambda text, attempt: "500") as server:
        with pytest.raises(LLMError, match=r"no answer after 3 attempts \(last: HTTP 500\)"):
            make_backend(config(server, max_retries=2)).generate([Prompt("x", {})])
        assert server.attempts["x"] == 3


def test_an_unreachable_endpoint_is_retried_then_reported():
    with ChatCompletionsServer() as server:
        url = server.base_url
    backend = make_backend(
        LLMConfig(
            backend="openai",
            model="m",
            openai={"base_url": url, "api_key_env": None, "max_retries": 1, "backoff_s": 0.01},
        )
    )
    with pytest.raises(LLMError, match=r"no answer after 2 attempts \(last: connection failed"):
        backend.generate([Prompt("x", {})])


def test_concurrency_is_bounded():
    with ChatCompletionsServer(delay_s=0.1) as server:
        answers = make_backend(config(server, concurrency=3)).generate([Prompt(f"p{i}", {}) for i in range(12)])
        assert len(answers) == 12
        assert 2 <= server.max_in_flight <= 3


def test_answers_already_paid_for_are_handed_over_before_a_failure():
    with ChatCompletionsServer(lambda text, attempt: "500" if text == "broken" else "ok") as server:
        received = {}
        prompts = [Prompt(text, {}) for text in ("a", "broken", "b", "c")]
        with pytest.raises(LLMError):
            make_backend(config(server, max_retries=1, concurrency=2)).generate(
                prompts, lambda i, answer: received.update({i: answer})
            )
        assert received == {0: expected("a"), 2: expected("b"), 3: expected("c")}


def test_the_key_comes_from_the_named_variable_and_is_never_shown(monkeypatch):
    with ChatCompletionsServer(api_key=SECRET) as server:
        monkeypatch.delenv(KEY_ENV, raising=False)
        with pytest.raises(LLMError, match=f"environment variable {KEY_ENV} is not set"):
            make_backend(config(server, api_key_env=KEY_ENV))
        monkeypatch.setenv(KEY_ENV, SECRET)
        backend = make_backend(config(server, api_key_env=KEY_ENV))
        assert backend.generate([Prompt("x", {})]) == [expected("x")]
        assert SECRET not in repr(backend.identity) and SECRET not in repr(backend.config)
        monkeypatch.setenv(KEY_ENV, "sk-wrong")
        with pytest.raises(LLMError, match="HTTP 401.*check the key") as error:
            make_backend(config(server, api_key_env=KEY_ENV)).generate([Prompt("x", {})])
        assert "sk-wrong" not in str(error.value)


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("Sat, 21 Nov 2026 22:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 21:59:50 GMT", -10.0),
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(header, seconds):
    now = 1795298400.0  # Sat, 21 Nov 2026 22:00:00 GMT
    assert retry_after_seconds(header, now=now) == seconds
