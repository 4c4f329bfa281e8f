"""Answers already paid for: one small JSON file per answer, keyed by what made it.

The key hashes the backend, the model, the generation settings and the prompt text, so a
crashed or repeated run, or another run sharing the folder, asks nothing twice. Each file is
written atomically, so a run killed mid-write leaves no half answer; a file that does not
parse (damaged by hand) counts as missing and is asked again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from curation.core.storage import filesystem, join, write_json_atomic
from labeling.vocab.llm.backend import Identity, Prompt


def answer_key(identity: Identity, prompt: Prompt) -> str:
    material = {
        "backend": identity.backend,
        "model": identity.model,
        "settings": identity.settings,
        "prompt": prompt.text,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class AnswerCache:
    def __init__(self, folder: str) -> None:
        self.folder = folder

    def url(self, key: str) -> str:
        # 256 subfolders, so a cache of millions of answers has no folder of millions of files
        return join(self.folder, key[:2], f"{key}.json")

    def get(self, key: str) -> str | None:
        fs, path = filesystem(self.url(key))
        try:
            with fs.open(path, "rb") as f:
                record: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        answer = record.get("answer")
        return answer if isinstance(answer, str) else None

    def put(self, key: str, identity: Identity, prompt: Prompt, answer: str) -> None:
        write_json_atomic(
            self.url(key),
            {
                "backend": identity.backend,
                "model": identity.model,
                "settings": identity.settings,
                "prompt": prompt.text,
                "answer": answer,
            },
        )
