import collections

import pytest

from labeling.vocab.builtin_tags import ASPECTS, load_builtin_tags, tags_by_aspect
from labeling.vocab.table import normalize_caption
from labeling.vocab.tag_aspects import OTHER, aspect_of, parse_tags


def test_about_a_thousand_distinct_tags_each_with_a_known_aspect():
    tags = load_builtin_tags()
    assert 900 <= len(tags) <= 1500
    normalized = collections.Counter(normalize_caption(t.tag) for t in tags)
    assert [t for t, n in normalized.items() if n > 1] == []
    assert {t.aspect for t in tags} == set(ASPECTS)
    assert all(t.tag == t.tag.strip() and t.tag and "," not in t.tag for t in tags)


def test_every_aspect_is_substantial_and_holds_what_it_should():
    by_aspect = tags_by_aspect()
    assert len(by_aspect["genre"]) >= 300 and len(by_aspect["instrument"]) >= 150 and len(by_aspect["mood"]) >= 100
    assert all(len(by_aspect[a]) >= 20 for a in ASPECTS)
    # the demo corpus's genres are all there, so its metadata tags land on built-in aspects
    for genre in ("ambient", "techno", "folk", "classical", "lo-fi hip hop", "rock", "jazz"):
        assert genre in by_aspect["genre"]
    assert {"piano", "acoustic guitar", "synth pad", "TR-808"} <= set(by_aspect["instrument"])
    assert {"male vocals", "instrumental", "a cappella"} <= set(by_aspect["vocals"])


@pytest.mark.parametrize(
    "tag,aspect",
    [
        ("Jazz", "genre"),  # built-in, any case
        ("mellow piano melody", "instrument"),  # contains a built-in instrument
        ("soft female vocal", "vocals"),  # vocals before instruments
        ("female vocal over piano", "vocals"),
        ("poor audio quality", "production"),
        ("amateur recording", "production"),
        ("slow tempo", "tempo"),
        ("120 BPM", "tempo"),
        ("fast paced", "tempo"),
        ("acoustic guitars", "instrument"),  # plural of a built-in tag
        ("90s", "era"),
        ("syncopated rhythm", "rhythm"),
        ("minor chords", "harmony"),
        ("sad", "mood"),
        ("very sad and lonely", "mood"),
        ("progressive bluegrass", "genre"),
        ("wedding toast", OTHER),
    ],
)
def test_free_tags_get_an_aspect(tag, aspect):
    assert aspect_of(tag) == aspect


@pytest.mark.parametrize(
    "value,expected",
    [
        (
            "['low quality', 'sustained strings melody', \"soft female vocal\"]",
            ["low quality", "sustained strings melody", "soft female vocal"],
        ),
        ('["piano", "calm"]', ["piano", "calm"]),
        ("rock; 80s | guitar, loud", ["rock", "80s", "guitar", "loud"]),
        (["jazz", " piano "], ["jazz", "piano"]),
        ("['unclosed, list", ["unclosed", "list"]),
        ("", []),
        (None, []),
    ],
)
def test_tag_cells_become_lists(value, expected):
    assert parse_tags(value) == expected
