"""LLM backends behind one small interface, chosen by name from a registry.

A backend turns prompts into answers, in order, and says who it is: its `identity`
(backend, model, generation settings) is what an answer's cache key is made of, so the same
prompt to the same model with the same settings is paid for once. Backends are imported
only when chosen (torch and transformers take seconds to import; httpx does not).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from curation.core.errors import UserError
from labeling.vocab.config import LLMConfig


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A request for sentences: the text an LLM reads, and the facts it was made from
    (aspect -> tags; the template backend writes from these, and the cleaning rules drop
    sentences that name the song's own title, artist or album)."""

    text: str
    facts: dict[str, tuple[str, ...]]
    sentences: int = 5  # how many the prompt asks for
    names: tuple[str, ...] = ()  # title, artist, album of the song, when a song prompted it
    origin: str = "aspects"  # corpus:<folder>, songs:<file> or aspects


@dataclasses.dataclass(frozen=True)
class Identity:
    backend: str
    model: str  # what `source` records: llm:<model>, or template
    settings: dict[str, Any]  # everything else that changes an answer

    @property
    def source(self) -> str:
        return "template" if self.backend == "template" else f"llm:{self.model}"


class LLMBackend(Protocol):
    identity: Identity

    def generate(self, prompts: Sequence[Prompt], on_answer: Callable[[int, str], None] | None = None) -> list[str]:
        """One answer per prompt, in order; on_answer(index, answer) as each is ready, so that
        answers paid for are kept even when a later prompt fails."""


class LLMError(UserError, RuntimeError):
    """A backend that cannot answer (model folder unreadable, endpoint failing, key missing); the message says which."""


BACKENDS: dict[str, str] = {
    "template": "labeling.vocab.llm.templates:TemplateBackend",
    "transformers": "labeling.vocab.llm.transformers_lm:TransformersBackend",
    "openai": "labeling.vocab.llm.openai_chat:OpenAIBackend",
}


def source_of(config: LLMConfig) -> str:
    """The `source` a backend's sentences are recorded with, known without loading it."""
    if config.backend == "template":
        return "template"
    model = config.model or ""
    return f"llm:{os.path.basename(os.path.abspath(model))}" if config.backend == "transformers" else f"llm:{model}"


def make_backend(config: LLMConfig, seed: int = 0) -> LLMBackend:
    module_name, class_name = BACKENDS[config.backend].split(":")
    backend_class = getattr(importlib.import_module(module_name), class_name)
    return backend_class(config, seed)
