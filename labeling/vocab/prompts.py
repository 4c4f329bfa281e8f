"""Prompts for long-form sentences: one per song, and one per combination of built-in tags.

Noise2Music prompted an LLM with song titles and artists; a corpus without metadata still
gets sentences from combinations of aspects ("calm jazz music with piano"). Combination i
is drawn from a generator seeded by (run seed, i), so adding combinations keeps the others.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from labeling.vocab.builtin_tags import tags_by_aspect
from labeling.vocab.config import PromptConfig
from labeling.vocab.llm.backend import Prompt
from labeling.vocab.songs import Song


def song_prompt(song: Song, config: PromptConfig) -> Prompt | None:
    """The prompt for a song, or None when it lacks a title or an artist to ask about."""
    if not (song.title and song.artist):
        return None
    known = "; ".join(f"{aspect}: {', '.join(tags)}" for aspect, tags in sorted(song.facts.items()))
    text = config.song.format(
        title=song.title,
        artist=song.artist,
        album=song.album or "",
        tags=f" ({known})" if known else "",
        n=config.sentences_per_answer,
    )
    return Prompt(text, song.facts, config.sentences_per_answer, song.names, song.origin)


def combination_prompts(config: PromptConfig, seed: int) -> Iterator[Prompt]:
    tags = tags_by_aspect()
    for index in range(config.combinations):
        rng = random.Random(f"{seed}:combination:{index}")
        facts = {aspect: (rng.choice(tags[aspect]),) for aspect in config.combination_aspects}
        text = config.aspects.format(description=describe(facts), n=config.sentences_per_answer)
        yield Prompt(text, facts, config.sentences_per_answer, (), "aspects")


def describe(facts: dict[str, tuple[str, ...]]) -> str:
    """Facts as a phrase: "calm jazz music with piano (fast tempo, 1980s)"."""
    genres = facts.get("genre", ())
    head = " ".join([*facts.get("mood", ()), *genres] + ([] if genres and genres[-1].endswith("music") else ["music"]))
    phrase = head + (" with " + " and ".join(facts["instrument"]) if facts.get("instrument") else "")
    others = [
        tag
        for aspect, values in sorted(facts.items())
        if aspect not in ("mood", "genre", "instrument")
        for tag in values
    ]
    return phrase + (f" ({', '.join(others)})" if others else "")
