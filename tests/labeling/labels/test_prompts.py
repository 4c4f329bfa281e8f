"""Prompt candidates and structured fields: long-form labels each a candidate, tags and
metadata packed into chunks within the token limit, fields by aspect for the prompt builder."""

from __future__ import annotations

import pytest

from labeling.clap.tokenizer import stand_in_tokenizer
from labeling.labels.prompts import (
    count_words,
    metadata_values,
    prompt_candidates,
    structured_fields,
    tag_chunks,
    token_counter,
)
from labeling.labels.table import Candidate

TAGS = [
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
LONG = [
    Candidate("llm_long", "l1", "A calm late-night jazz trio with soft brushes.", None, 0.2),
    Candidate("rater_long", "r1", "The recording is noisy.", None, 0.1),
]
META = {"title": "Blue Hour", "artist": "The Quiet Trio", "album": "Night", "genre": "Jazz; Cool Jazz"}


@pytest.fixture(scope="module")
def stand_in_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("t5-like")
    stand_in_tokenizer().save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("limit", [16, 24, 64])
@pytest.mark.parametrize("counter", ["words", "tokenizer"])
def test_chunks_fit_the_limit_and_keep_every_item_in_order(limit, counter, stand_in_folder):
    count = count_words if counter == "words" else token_counter(stand_in_folder)
    items = ["jazz", "double bass", "calm", "piano", "brushed drums", "Blue Hour", "The Quiet Trio"]
    chunks = tag_chunks(items, limit, count)
    assert all(count(chunk) <= limit for chunk in chunks)
    assert [i for chunk in chunks for i in chunk.split(", ")] == items
    if limit == 64:
        assert len(chunks) == 1


def test_an_item_longer_than_the_limit_is_cut_and_duplicates_dropped():
    chunks = tag_chunks(["calm", "Calm.", "a very long title that goes on and on and on"], 5, count_words)
    assert chunks == ["calm", "a very long title that"]


def test_prompt_candidates_are_long_labels_then_tag_chunks():
    prompts = prompt_candidates(LONG, TAGS, META, ["genre", "artist", "title"], 64, count_words)
    assert prompts[:2] == [LONG[0].text, LONG[1].text]
    assert prompts[2:] == ["jazz, double bass, calm, piano, brushed drums, Cool Jazz, The Quiet Trio, Blue Hour"]


def test_structured_fields_group_tags_by_aspect_and_add_metadata():
    fields = structured_fields(TAGS, META, ["genre", "artist"])
    assert fields == {
        "artist": ["The Quiet Trio"],
        "genre": ["jazz", "Cool Jazz"],
        "instrument": ["double bass", "piano", "brushed drums"],
        "mood": ["calm"],
    }
    assert metadata_values("genre", " Rock / Pop ;Indie") == ["Rock", "Pop", "Indie"]
    assert metadata_values("title", "  ") == []
