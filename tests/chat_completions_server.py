"""A real HTTP server speaking the OpenAI chat-completions protocol, for the openai backend's tests.

It answers with the template backend's sentences for the prompt text, and can be told to
misbehave per prompt and attempt: 429 (with Retry-After), 500, malformed JSON, a slow
answer, or a 400. It counts requests, answers and the most requests in flight at once.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from labeling.vocab.config import LLMConfig
from labeling.vocab.llm.backend import Prompt
from labeling.vocab.llm.templates import TemplateBackend

# behaviour(prompt_text, attempt number from 0) -> "ok", "429", "500", "malformed", "slow", "400"
Behaviour = Callable[[str, int], str]


class ChatCompletionsServer:
    def __init__(
        self,
        behaviour: Behaviour = lambda text, attempt: "ok",
        api_key: str | None = None,
        slow_s: float = 1.0,
        delay_s: float = 0.0,
    ) -> None:
        self.behaviour = behaviour
        self.api_key = api_key
        self.slow_s = slow_s
        self.delay_s = delay_s
        self.attempts: collections.Counter[str] = collections.Counter()
        self.answered: collections.Counter[str] = collections.Counter()  # 200 answers with content, by prompt
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.template = TemplateBackend(LLMConfig(), seed=0)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ChatCompletionsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "not found"}')
                if owner.api_key is not None and self.headers.get("Authorization") != f"Bearer {owner.api_key}":
                    return self._send(401, b'{"error": {"message": "invalid api key"}}')
                text = body["messages"][-1]["content"]
                with owner.lock:
                    attempt = owner.attempts[text]
                    owner.attempts[text] += 1
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                try:
                    time.sleep(owner.delay_s)
                    self._answer(owner.behaviour(text, attempt), text, body)
                finally:
                    with owner.lock:
                        owner.in_flight -= 1

            def _answer(self, mode: str, text: str, body: dict) -> None:
                if mode == "429":
                    return self._send(429, b'{"error": "slow down"}', {"Retry-After": "0.01"})
                if mode == "500":
                    return self._send(500, b'{"error": "internal"}')
                if mode == "400":
                    return self._send(400, b'{"error": {"message": "prompt rejected"}}')
                if mode == "malformed":
                    return self._send(200, b'{"choices": [{"message": ')
                if mode == "slow":
                    time.sleep(owner.slow_s)
                content = owner.template.answer(Prompt(text, {}, 5))
                with owner.lock:
                    owner.answered[text] += 1
                answer = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                    ],
                }
                self._send(200, json.dumps(answer).encode())

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                # A client that gave up on a slow answer, as it should, has closed the connection.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)

        return Handler
