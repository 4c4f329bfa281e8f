"""The openai backend: any OpenAI-compatible chat-completions endpoint over HTTP.

vLLM, TGI, llama.cpp's server, Ollama and hosted APIs all speak it. Requests go out
`concurrency` at a time; a 429, a 5xx, a timeout, a dropped connection or an answer that
is not chat-completions JSON is retried after an exponential, jittered wait (or the
server's Retry-After); other 4xx answers stop the run at once with the server's reason.
The API key comes from the environment variable the config names; it is sent in the
Authorization header and appears nowhere else (not in identities, caches, logs or errors).
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from labeling.vocab.config import LLMConfig
from labeling.vocab.llm.backend import Identity, LLMError, Prompt

_RETRIED_STATUS = {408, 409, 425, 429}


class OpenAIBackend:
    def __init__(self, config: LLMConfig, seed: int = 0) -> None:
        self.config = config
        self.options = config.openai
        self.seed = seed
        headers = {}
        self._secret: str | None = None
        if self.options.api_key_env:
            key = os.environ.get(self.options.api_key_env)
            if not key:
                raise LLMError(
                    f"llm.openai.api_key_env: the environment variable {self.options.api_key_env} is not set; "
                    "export it with the endpoint's key, or set api_key_env empty for an endpoint without one"
                )
            headers["Authorization"] = f"Bearer {key}"
            self._secret = key
        self.url = self.options.base_url.rstrip("/") + "/chat/completions"
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.options.timeout_s),
            limits=httpx.Limits(
                max_connections=self.options.concurrency, max_keepalive_connections=self.options.concurrency
            ),
        )
        self.identity = Identity(
            "openai",
            config.model or "",
            {
                "max_tokens": config.max_new_tokens,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "seed": seed,
            },
        )

    def generate(self, prompts: Sequence[Prompt], on_answer: Callable[[int, str], None] | None = None) -> list[str]:
        answers: list[str] = [""] * len(prompts)

        def complete(index: int) -> None:
            answers[index] = self.complete(prompts[index])
            if on_answer is not None:
                on_answer(index, answers[index])

        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            # list() re-raises the first failure; answers already returned were handed to on_answer.
            list(pool.map(complete, range(len(prompts))))
        return answers

    def complete(self, prompt: Prompt) -> str:
        body = {
            "model": self.config.model,
            "messages": [{"role": "user", "content": prompt.text}],
            "max_tokens": self.config.max_new_tokens,
            "temperature": self.config.temperature,
            "top_p": self.config.top_p,
            "seed": self.seed,
        }
        failure = ""
        retry_after: str | None = None
        for attempt in range(self.options.max_retries + 1):
            if attempt:
                time.sleep(self._wait(prompt, attempt, retry_after))
            retry_after = None
            try:
                response = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                failure = f"no answer within {self.options.timeout_s:g} s"
                continue
            except httpx.TransportError as error:
                failure = f"connection failed ({type(error).__name__})"
                continue
            if response.status_code == 200:
                try:
                    return _content(response.json())
                except (ValueError, KeyError, IndexError, TypeError):
                    failure = "an answer that is not chat-completions JSON"
                    continue
            if response.status_code in _RETRIED_STATUS or response.status_code >= 500:
                failure = f"HTTP {response.status_code}"
                retry_after = response.headers.get("retry-after")
                continue
            hint = (
                "; check the key in the variable llm.openai.api_key_env names"
                if response.status_code in (401, 403)
                else ""
            )
            raise LLMError(
                self._scrub(
                    f"{self.url}: HTTP {response.status_code} for model {self.config.model}: "
                    f"{response.text[:300]!r}{hint}"
                )
            )
        raise LLMError(
            self._scrub(
                f"{self.url}: no answer after {self.options.max_retries + 1} attempts "
                f"(last: {failure}); raise llm.openai.max_retries or timeout_s, or check the server"
            )
        )

    def _wait(self, prompt: Prompt, attempt: int, retry_after: str | None) -> float:
        asked = retry_after_seconds(retry_after) if retry_after is not None else None
        if asked is not None:
            return min(max(asked, 0.0), self.options.max_backoff_s)
        # Jitter spreads the retries of many workers; seeded so a run's waits are reproducible.
        jitter = random.Random(f"{prompt.text}:{attempt}").uniform(0.5, 1.0)
        return min(self.options.backoff_s * 2 ** (attempt - 1) * jitter, self.options.max_backoff_s)

    def _scrub(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret else message

    def close(self) -> None:
        self.client.close()


def _content(data: Any) -> str:
    content = data["choices"][0]["message"]["content"]
    if content is None:  # a refusal or a tool call: no sentences, not an error
        return ""
    if not isinstance(content, str):
        raise TypeError("content is not text")
    return content


def retry_after_seconds(value: str, now: float | None = None) -> float | None:
    """A Retry-After header as seconds from now: delay-seconds or an HTTP date (RFC 9110);
    None for anything else, which leaves the wait to our own schedule."""
    with contextlib.suppress(ValueError):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; a zone-less one is read so too
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() - (time.time() if now is None else now)
