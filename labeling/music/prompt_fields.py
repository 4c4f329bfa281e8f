"""A clip's musical facts as the label table states them: structured fields, tags and a sentence.

Only facts at or above the configured confidence are stated; a doubtful tempo or key is left
out rather than taught to the model wrongly. Structured fields feed Stable Audio style prompts
(`BPM: 120 | Key: A minor | Tempo: medium`, through the loader); the tags join the clip's tag
chunks (`120 bpm, A minor, medium tempo`); the sentence is one more long-form candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labeling.music.config import MusicFields
from labeling.music.facts import MusicFacts


@dataclass(frozen=True)
class StatedFacts:
    structured: dict[str, list[str]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)  # none, or the one long-form sentence

    def merged(self, structured: dict[str, list[str]]) -> dict[str, list[str]]:
        """The clip's other structured fields with these added (a tempo word CLAP chose stays beside ours)."""
        out = {aspect: list(values) for aspect, values in structured.items()}
        for aspect, values in self.structured.items():
            out[aspect] = out.get(aspect, []) + [v for v in values if v not in out.get(aspect, [])]
        return dict(sorted(out.items()))


def tempo_word(bpm: float, bins: dict[str, float]) -> str | None:
    """The last bin whose lower bound the BPM reaches ({"slow": 0, "medium": 85, ...})."""
    reached = [(low, word) for word, low in bins.items() if bpm >= low]
    return max(reached)[1] if reached else None


def stated_facts(facts: MusicFacts | None, settings: MusicFields | None) -> StatedFacts:
    """What the label table states of a clip's facts; nothing without facts or a music section."""
    if facts is None or settings is None:
        return StatedFacts()
    structured: dict[str, list[str]] = {}
    tags: list[str] = []
    phrases: list[str] = []
    if facts.key_name and facts.key_confidence >= settings.min_confidence:
        structured["key"] = [facts.key_name]
        tags.append(facts.key_name)
        phrases.append(facts.key_name)
    if facts.bpm is not None and facts.bpm_confidence >= settings.min_confidence:
        bpm = f"{round(facts.bpm)}"
        structured["bpm"] = [bpm]
        tags.append(f"{bpm} bpm")
        phrases.append(f"{bpm} bpm")
        word = tempo_word(facts.bpm, settings.tempo_bins)
        if word:
            structured["tempo"] = [word]
            tags.append(f"{word} tempo")
    # A progression in Roman numerals is only meaningful relative to a key we are sure of.
    if facts.progression and "key" in structured:
        structured["chords"] = [facts.progression]
        phrases.append(f"with a {facts.progression} progression")
    sentence = ", ".join(phrases)
    sentences = [sentence[0].upper() + sentence[1:] + "."] if settings.long_form and phrases else []
    return StatedFacts(structured, tags, sentences)
