"""The demo corpus's rater captions: MusicCaps' columns, what is known about each piece, the same bytes every time."""

import csv
import re

from curation.demo.corpus import CAPTION_COLUMNS, demo_caption, write_demo_captions
from labeling.vocab.cleaning.rules import SentenceRules
from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.tag_aspects import parse_tags
from labeling.vocab.config import CleaningConfig


def test_captions_describe_each_piece_in_two_or_three_clean_sentences(demo_corpus, tmp_path):
    _, pieces = demo_corpus
    path = write_demo_captions(pieces, tmp_path / "captions" / "rater_captions.csv")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CAPTION_COLUMNS and len(rows) == len(pieces)
    assert len({row["ytid"] for row in rows}) == len(rows)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", row["ytid"]) for row in rows)

    rules = SentenceRules(CleaningConfig())
    for piece, row in zip(pieces, rows, strict=True):
        sentences = split_sentences(row["caption"]).sentences
        assert 2 <= len(sentences) <= 3, row["caption"]  # a 36-piece demo: at most 108 rater sentences
        assert [rules.check(s) for s in sentences] == [None] * len(sentences), row["caption"]
        assert piece.genre in row["caption"] and piece.title not in row["caption"] and piece.artist not in row["caption"]
        aspects = parse_tags(row["aspect_list"])
        assert aspects[0] == piece.genre and f"{piece.key.split()[1]} key" in aspects
        assert ("mono" in aspects) == (piece.channels == 1)
        assert ("low fidelity" in aspects) == (piece.sample_rate < 32000)
        assert ("silence" in aspects) == bool(piece.silence_gaps)

    again = write_demo_captions(pieces, tmp_path / "again.csv")
    assert again.read_bytes() == path.read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))


def test_phrasings_vary_between_pieces(demo_corpus):
    _, pieces = demo_corpus
    openings = {demo_caption(p)["caption"].split()[0] for p in pieces}
    assert len(openings) >= 3
