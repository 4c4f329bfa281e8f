"""The template backend: no model, sentences written from templates over tag combinations.

What a prompt's facts say (a song's genre, a combination's instrument and mood) is used;
an aspect they leave open is drawn from the built-in tags with a generator seeded by the
prompt, so the same prompt always gets the same answer. Its sentences are recorded with
source `template`, never passed off as an LLM's.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Callable, Sequence

from labeling.vocab.builtin_tags import tags_by_aspect
from labeling.vocab.config import LLMConfig
from labeling.vocab.llm.backend import Identity, Prompt

# Bump when a change alters the sentences, so that cached answers are not reused.
VERSION = 1

# {G} genre, {I} {I2} instruments, {L} a melodic (not percussion) instrument, {M} {M2}
# moods, {T} tempo word, {E} era; {a} is "a"/"an" for the word after it. Instruments appear
# only after "with", "by", "on", "around" and "featuring", where a plural ("congas",
# "strings") reads as well as a singular.
PATTERNS = (
    "{a} {M} {G} piece led by {L}.",
    "{a} {M} melody on {L} over {a} {G} backing.",
    "{G} music at {a} {T} tempo, with {I} up front.",
    "{M} {G} music built around {L}.",
    "The mood is {M} and {M2}, with {I} and {I2} in {a} {G} style.",
    "{G} with {I}, {I2} and {a} {T} tempo.",
    "{a} {T}-tempo {G} track featuring {I} and {I2}.",
    "This {G} track feels {M}, carried by {L}.",
    "{a} {M} arrangement for {I} and {I2}.",
    "Soft {I} and {I2} shape {a} {M} {G} atmosphere.",
    "{a} {G} groove with {I}; the feeling is {M}.",
    "{I} over {I2}, {M} and {M2}, in the manner of {G}.",
)
ERA_PATTERNS = (
    "{a} {E} {G} sound with {I}.",
    "{G} with {a} {E} feel, featuring {I}.",
)
_TEMPO = re.compile(r"^((?:very )?(?:slow|medium|moderate|fast)) tempo$")
_PERCUSSION = re.compile(
    r"drum|cymbal|hi-hat|snare|kick|toms|clap|snap|shaker|maraca|claves|cowbell|woodblock|triangle|"
    r"conga|bongo|timbales|caj[oó]n|djembe|tabla|darbuka|bodhr[aá]n|guiro|surdo|tambourine|gong|"
    r"TR-\d|scratching|berimbau"
)


class TemplateBackend:
    def __init__(self, config: LLMConfig, seed: int = 0) -> None:
        self.seed = seed
        self.identity = Identity("template", "template", {"version": VERSION, "seed": seed})

    def generate(self, prompts: Sequence[Prompt], on_answer: Callable[[int, str], None] | None = None) -> list[str]:
        answers = [self.answer(prompt) for prompt in prompts]
        for index, answer in enumerate(answers):
            if on_answer is not None:
                on_answer(index, answer)
        return answers

    def answer(self, prompt: Prompt) -> str:
        key = repr((self.seed, prompt.text, sorted(prompt.facts.items()))).encode()
        rng = random.Random(hashlib.sha256(key).digest())
        patterns = list(PATTERNS) + (list(ERA_PATTERNS) if prompt.facts.get("era") else [])
        rng.shuffle(patterns)
        lines = [self._fill(patterns[i % len(patterns)], prompt.facts, rng) for i in range(prompt.sentences)]
        return "\n".join(lines)

    def _fill(self, pattern: str, facts: dict[str, tuple[str, ...]], rng: random.Random) -> str:
        tags = tags_by_aspect()
        tempos, melodic = _tempo_words(), _melodic_instruments()

        def pick(aspect: str, pool: Sequence[str], avoid: str | None = None) -> str:
            known = [v for v in facts.get(aspect, ()) if v != avoid]
            choices = known or [v for v in pool if v != avoid]
            return rng.choice(choices)

        instrument = pick("instrument", tags["instrument"])
        mood = pick("mood", tags["mood"])
        values = {
            "G": pick("genre", tags["genre"]),
            "I": instrument,
            "I2": pick("instrument", tags["instrument"], avoid=instrument),
            "L": pick("instrument", melodic),
            "M": mood,
            "M2": pick("mood", tags["mood"], avoid=mood),
            "T": pick("tempo", tempos),
            "E": pick("era", tags["era"]),
        }
        text = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)] if m.group(1) != "a" else "{a}", pattern)
        text = re.sub(r"\{a\} (\S+)", lambda m: f"{article(m.group(1))} {m.group(1)}", text)
        text = re.sub(r"\bmusic music\b", "music", text)  # genres such as "comedy music"
        return text[0].upper() + text[1:]


@functools.cache
def _tempo_words() -> tuple[str, ...]:
    return tuple(m.group(1) for t in tags_by_aspect()["tempo"] if (m := _TEMPO.match(t)))


@functools.cache
def _melodic_instruments() -> tuple[str, ...]:
    return tuple(t for t in tags_by_aspect()["instrument"] if not _PERCUSSION.search(t))


def article(word: str) -> str:
    """ "an" before a vowel sound: an uplifting, an 80s; a euphoric, a unison."""
    lower = word.lower()
    if lower.startswith(("eu", "uni", "use", "one")):
        return "a"
    if lower[0] in "aeiou" or lower[0] == "8" or (lower.startswith(("11", "18")) and not lower.startswith("110")):
        return "an"
    return "a"
