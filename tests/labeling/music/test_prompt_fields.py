"""Musical facts stated as structured fields, tags and a sentence; doubtful ones left out."""

import random

import pytest

from labeling.music.config import MusicFields
from labeling.music.facts import MusicFacts
from labeling.music.prompt_fields import stated_facts, tempo_word
from shards.loader.prompts import build_prompt

SURE = MusicFacts(bpm=121.6, bpm_confidence=0.8, beat_count=40, key="A", mode="minor", key_confidence=0.9,
                  chords=["A:min", "F:maj", "C:maj", "G:maj"], progression="i-bVI-bIII-bVII")  # fmt: skip
SETTINGS = MusicFields(analysis="unused", min_confidence=0.5)


def test_confident_facts_are_stated_every_way():
    stated = stated_facts(SURE, SETTINGS)
    assert stated.structured == {"bpm": ["122"], "key": ["A minor"], "tempo": ["fast"], "chords": ["i-bVI-bIII-bVII"]}
    assert stated.tags == ["A minor", "122 bpm", "fast tempo"]
    assert stated.sentences == ["A minor, 122 bpm, with a i-bVI-bIII-bVII progression."]


def test_doubtful_facts_are_left_out():
    doubtful_key = MusicFacts(**{**SURE.__dict__, "key_confidence": 0.3})
    stated = stated_facts(doubtful_key, SETTINGS)
    assert set(stated.structured) == {"bpm", "tempo"}  # no key, so no progression relative to it
    assert stated.sentences == ["122 bpm."]
    doubtful_tempo = MusicFacts(**{**SURE.__dict__, "bpm_confidence": 0.49})
    assert set(stated_facts(doubtful_tempo, SETTINGS).structured) == {"key", "chords"}
    assert stated_facts(MusicFacts(), SETTINGS) == stated_facts(None, SETTINGS) == stated_facts(SURE, None)
    assert stated_facts(MusicFacts(), SETTINGS).structured == {}


def test_merged_keeps_the_tags_clap_chose():
    merged = stated_facts(SURE, SETTINGS).merged({"tempo": ["slow"], "genre": ["jazz"]})
    assert merged == {
        "bpm": ["122"], "chords": ["i-bVI-bIII-bVII"], "genre": ["jazz"], "key": ["A minor"], "tempo": ["slow", "fast"]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("bpm", "word"), [(60, "slow"), (84.9, "slow"), (85, "medium"), (140, "fast"), (170, "very fast")]
)
def test_tempo_words_from_bins(bpm, word):
    assert tempo_word(bpm, SETTINGS.tempo_bins) == word


def test_structured_prompts_title_the_facts():
    structured = stated_facts(SURE, SETTINGS).structured
    prompts = {build_prompt(structured, random.Random(seed), "structured") for seed in range(40)}
    assert any("BPM: 122" in p for p in prompts) and any("Chords: i-bVI-bIII-bVII" in p for p in prompts)
