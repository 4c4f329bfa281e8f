import random

import pytest

from shards.loader.prompts import build_prompt

FIELDS = {"genre": ["Jazz"], "instrument": ["Piano", "Double Bass"], "mood": ["Calm", "Warm"], "tempo": []}


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
    seen_last = {parse_structured(build_prompt(FIELDS, random.Random(s), "structured")).popitem()[0] for s in range(300)}
    assert seen_last == {"Genre", "Instruments", "Moods"}


def test_no_fields_gives_the_unconditional_prompt():
    assert build_prompt({}, random.Random(0), "free_form") == ""
    assert build_prompt({"genre": []}, random.Random(0), "structured") == ""
