"""Prompt choice at load time: Stable Audio style prompts built from fields, and the weighted
choice among a sample's kinds of candidates."""

import random

import pytest

from labeling.labels.prompts import structured_fields
from labeling.labels.table import Candidate
from shards.loader.config import PromptWeights
from shards.loader.prompts import build_prompt, choose_prompt

FIELDS = {"genre": ["Jazz"], "instrument": ["Piano", "Double Bass"], "mood": ["Calm", "Warm"], "tempo": []}
RECORD = {
    "text": "jazz trio",
    "long_form": ["A calm jazz trio."],
    "tag_chunks": ["jazz, piano, calm"],
    "structured": [
        {"aspect": "genre", "values": ["Jazz"]},
        {"aspect": "mood", "values": ["Calm"]},
        {"aspect": "tempo", "values": []},
    ],
}


def parse_structured(prompt: str) -> dict[str, list[str]]:
    return {title: values.split(", ") for title, values in (part.split(": ") for part in prompt.split(" | "))}


def test_structured_prompt_uses_titles_and_only_known_values():
    for seed in range(50):
        fields = parse_structured(build_prompt(FIELDS, random.Random(seed), "structured"))
        titles = {"Genre": "genre", "Instruments": "instrument", "Moods": "mood"}
        assert fields and set(fields) <= set(titles)
        for title, values in fields.items():
            assert values and set(values) <= set(FIELDS[titles[title]])


def test_free_form_prompt_is_a_subset_of_the_values():
    everything = {v for values in FIELDS.values() for v in values}
    for seed in range(50):
        values = build_prompt(FIELDS, random.Random(seed), "free_form").split(", ")
        assert values and set(values) <= everything and len(values) == len(set(values))


@pytest.mark.parametrize("style", ["structured", "free_form"])
def test_same_seed_same_prompt_and_variety_across_seeds(style):
    assert build_prompt(FIELDS, random.Random(7), style) == build_prompt(FIELDS, random.Random(7), style)
    prompts = {build_prompt(FIELDS, random.Random(seed), style) for seed in range(200)}
    assert len(prompts) > 20  # subsets and order really vary


def test_every_field_and_order_appears():
    prompts = [build_prompt(FIELDS, random.Random(seed), "structured") for seed in range(300)]
    seen_last = {parse_structured(prompt).popitem()[0] for prompt in prompts}
    assert seen_last == {"Genre", "Instruments", "Moods"}


def test_no_fields_gives_the_unconditional_prompt():
    assert build_prompt({}, random.Random(0), "free_form") == ""
    assert build_prompt({"genre": []}, random.Random(0), "structured") == ""


def test_the_loader_builds_prompts_from_the_fields():
    tags = [
        Candidate("tags", f"t{i}", text, aspect, 0.3)
        for i, (text, aspect) in enumerate(
            [
                ("jazz", "genre"),
                ("double bass", "instrument"),
                ("calm", "mood"),
                ("piano", "instrument"),
                ("Jazz", "genre"),
                ("brushed drums", "instrument"),
            ]
        )
    ]
    metadata = {"title": "Blue Hour", "artist": "The Quiet Trio", "album": "Night", "genre": "Jazz; Cool Jazz"}
    fields = structured_fields(tags, metadata, ["genre"])
    values = {v for vs in fields.values() for v in vs}
    for seed in range(30):
        free = build_prompt(fields, random.Random(seed), "free_form").split(", ")
        assert free and set(free) <= values
        structured = build_prompt(fields, random.Random(seed), "structured")
        assert structured.split(": ")[0] in {"Genre", "Instruments", "Moods"}


KINDS = ("long_form", "tag_chunk", "structured", "free_form")


@pytest.mark.parametrize(
    "kind,check",
    [
        ("long_form", lambda p: p in RECORD["long_form"]),
        ("tag_chunk", lambda p: p in RECORD["tag_chunks"]),
        ("structured", lambda p: set(parse_structured(p)) <= {"Genre", "Moods"}),
        ("free_form", lambda p: ":" not in p and set(p.split(", ")) <= {"Jazz", "Calm"}),
    ],
)
@pytest.mark.parametrize("pick", ["weighted", "uniform"])
def test_a_kind_with_all_the_weight_is_always_chosen(kind, check, pick):
    weights = PromptWeights(pick=pick, **{name: float(name == kind) for name in KINDS})
    assert all(check(choose_prompt(RECORD, weights, random.Random(seed))) for seed in range(20))


def test_uniform_picks_every_candidate_alike_as_noise2music_does():
    """6 long-form sentences and 1 tag chunk: the chunk is 1 of 7 candidates (weighted by kind it
    gets its kind's share, here a third, whatever the counts)."""
    record = {"long_form": [f"Sentence {i}." for i in range(6)], "tag_chunks": ["jazz, calm, piano"]}
    draws = 14000

    def chunk_share(weights: PromptWeights) -> float:
        rng = random.Random(0)
        return sum(choose_prompt(record, weights, rng) == "jazz, calm, piano" for _ in range(draws)) / draws

    noise2music = {"long_form": 1.0, "tag_chunk": 1.0, "structured": 0.0, "free_form": 0.0}
    assert abs(chunk_share(PromptWeights(pick="uniform", **noise2music)) - 1 / 7) < 0.01
    assert abs(chunk_share(PromptWeights(pick="weighted", **noise2music)) - 1 / 2) < 0.015
    structured = {**RECORD, "long_form": record["long_form"]}
    rng = random.Random(1)
    picks = [choose_prompt(structured, PromptWeights(pick="uniform"), rng) for _ in range(10000)]
    # 6 sentences, 1 chunk, one structured and one free-form prompt: 1/9 each
    assert abs(sum(p in record["long_form"] for p in picks) / len(picks) - 6 / 9) < 0.02
    assert abs(sum(": " in p for p in picks) / len(picks) - 1 / 9) < 0.015


def test_kinds_a_sample_lacks_are_left_out_and_text_is_the_last_resort():
    only_long = {"text": "jazz trio", "long_form": ["A calm jazz trio."]}
    assert {choose_prompt(only_long, PromptWeights(), random.Random(s)) for s in range(20)} == {"A calm jazz trio."}
    assert choose_prompt({"text": "jazz trio"}, PromptWeights(), random.Random(0)) == "jazz trio"
    assert choose_prompt({}, PromptWeights(), random.Random(0)) == ""
