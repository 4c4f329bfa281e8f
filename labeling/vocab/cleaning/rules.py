"""Sentence rules: which split sentences are good long-form captions, and why not.

Each rule has a name; a sentence is dropped by the first rule it breaks and the name is
counted, so a run's summary says what every rule removed. The rules that look at one
sentence live here (they run on the workers, next to generation); the corpus-wide ones,
exact and near duplicates and evaluation overlap, in caption_dedup.py.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from labeling.vocab.builtin_tags import load_builtin_tags
from labeling.vocab.config import CleaningConfig

# Rule names, in the order they are applied.
NOT_PROSE = "not_prose"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
NAMES_SONG = "names_song"
NON_DESCRIPTIVE = "non_descriptive"  # counted as non_descriptive:<rule name>
NOT_ABOUT_MUSIC = "not_about_music"

_URL = re.compile(r"https?://|www\.|\S+@\S+\.\w+|[{}<>\\|]")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_MUSIC_WORDS = (
    "music musical musician musicians song songs track tracks piece pieces tune tunes melody melodies melodic "
    "harmony harmonies harmonic rhythm rhythms rhythmic beat beats groove grooves tempo chord chords bass bassline "
    "basslines drum drums drummer drumming percussion percussive vocal vocals vocalist voice voices singer singers "
    "singing sings sung instrument instruments instrumental instrumentation sound sounds sonic tone tones timbre "
    "mix mixed production produced arrangement arranged riff riffs solo solos verse verses chorus hook intro outro "
    "note notes played playing plays strummed strumming plucked picked bowed synth synths synthesizer synthesizers "
    "sample samples sampled recording recorded orchestra orchestral ensemble band composition crescendo key major "
    "minor bpm reverb distortion acoustic electric electronic loop loops accompaniment accompanied keys strings "
    "horns brass woodwinds choir riffing backbeat ballad anthem duet"
)
# Built-in tags that are everyday words as well; alone they do not make a sentence musical.
_AMBIGUOUS = {
    "house",
    "drop",
    "bridge",
    "trap",
    "drill",
    "rage",
    "bounce",
    "march",
    "soul",
    "spiritual",
    "alternative",
    "experimental",
    "indie",
    "grime",
    "jam",
    "industrial",
    "noise",
    "classic",
    "contemporary",
    "modern",
    "crisp",
    "sampled",
    "echo",
    "delay",
    "commercial",
    "jingle",
    "karaoke",
    "video game",
    "triangle",
    "bells",
    "emo",
    "boogie",
    "rap",
    "plugg",
    "dub",
    "hymn",
}
_MUSIC_ASPECTS = ("genre", "instrument", "vocals", "rhythm", "tempo", "production", "harmony", "structure")


class SentenceRules:
    """The per-sentence rules of a cleaning config; `check` names the first one broken."""

    def __init__(self, config: CleaningConfig) -> None:
        self.config = config
        self._non_descriptive = [
            (name, re.compile(pattern, re.IGNORECASE)) for name, pattern in config.non_descriptive.items()
        ]

    def check(self, sentence: str, names: Sequence[str] = ()) -> str | None:
        words = _WORD.findall(sentence)
        letters = sum(ch.isalpha() for ch in sentence)
        if _URL.search(sentence) or letters < 0.6 * len(sentence.replace(" ", "")):
            return NOT_PROSE
        if len(words) < self.config.min_words:
            return TOO_SHORT
        if len(words) > self.config.max_words or len(sentence) > self.config.max_chars:
            return TOO_LONG
        if self.config.drop_song_names and names and names_pattern(tuple(names)).search(fold(sentence)):
            return NAMES_SONG
        for name, pattern in self._non_descriptive:
            if pattern.search(sentence):
                return f"{NON_DESCRIPTIVE}:{name}"
        if self.config.require_music_word and not music_words().search(fold(sentence)):
            return NOT_ABOUT_MUSIC
        return None


def fold(text: str) -> str:
    """Lower case without accents, so "Lea Moreau" matches "Léa Moreau"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_variants(name: str) -> list[str]:
    """A title as written and without its release suffixes: "Tide (Remastered 2011)" is also "Tide"."""
    bare = re.sub(r"\s*[(\[].*?[)\]]\s*|\s+[-–—]\s+.*$", " ", name).strip()
    return [v for v in dict.fromkeys([name.strip(), bare]) if v]


@functools.lru_cache(maxsize=4096)
def names_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """Whole-word matches of the names worth searching for. Names under three letters, and
    one-word names that are music words themselves (a song called "Jazz"), would drop
    sentences about the music, not the song, so they are not searched."""
    wanted = set()
    for name in names:
        for variant in name_variants(name):
            folded = fold(variant)
            if len(folded) < 3 or (" " not in folded and music_words().fullmatch(folded)):
                continue
            wanted.add(re.escape(folded))
    if not wanted:
        return re.compile(r"(?!x)x")  # matches nothing
    return re.compile(r"(?<!\w)(?:" + "|".join(sorted(wanted, key=len, reverse=True)) + r")(?!\w)")


@functools.cache
def music_words() -> re.Pattern[str]:
    """Words and phrases that make a sentence about music: a core list plus the built-in
    genres, instruments, vocals, rhythm, tempo, production, harmony and structure tags."""
    phrases = set(_MUSIC_WORDS.split())
    for tag in load_builtin_tags():
        folded = fold(tag.tag)
        if tag.aspect in _MUSIC_ASPECTS and folded not in _AMBIGUOUS:
            phrases.add(folded)
    alternatives = sorted((re.escape(p) for p in phrases), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?:e?s)?(?!\w)")
