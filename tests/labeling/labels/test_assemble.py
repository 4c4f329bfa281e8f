"""A unit's top-K lists become label rows: draws follow the global frequencies (1 / frequency),
and sentences of an evaluation file are labels but no prompts unless asked for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from label_inputs import TAGS, write_clip_table, write_vocabularies

from labeling.labels.assemble import AssembleSettings, InputsChanged, assemble_unit, frequency_digest
from labeling.labels.config import Balancing, Prompts
from labeling.labels.score import COUNT_SCHEMA, TOPK_SCHEMA, work_part
from labeling.labels.table import LABELS_DIR, labels_from_table
from labeling.labels.units import LabelUnit, plan_units
from labeling.vocab.table import read_vocabularies

CLIPS = [(0.05, 200.0 + i, f"Title {i}", None, None) for i in range(300)]
RATER = ["A quiet flute melody over a drone.", "A brass band marches past.", "Rain falls on a tin roof."]


def assemble(root: Path, frequencies: dict[str, dict[int, int]], tags=TAGS, **prompts) -> list:
    """Every clip's top-K: the first four captions of each vocabulary (in caption_id order),
    best first; `frequencies` (vocabulary -> caption index -> count) the global counts."""
    unit, settings = planned(root, frequencies, tags, **prompts)
    assemble_unit(unit, settings)
    return labels_from_table(pq.read_table(Path(settings.output) / LABELS_DIR))


def planned(
    root: Path, frequencies: dict[str, dict[int, int]], tags=TAGS, **prompts
) -> tuple[LabelUnit, AssembleSettings]:
    """One unit of every clip, its top-K part and the global frequencies written: what a label
    run has done when its units draw their labels."""
    clips = write_clip_table(root / "curated", parts=1, clips=CLIPS)
    vocab = write_vocabularies(root / "vocab", tags=tags, rater_long=RATER, evaluation=True)
    vocabularies = read_vocabularies(vocab)
    _, units = plan_units(clips, len(CLIPS))
    (unit,) = units
    output = str(root / "labels")
    clip_ids = [c for s in unit.segments for c in pq.read_table(s.part, columns=["clip_id"])["clip_id"].to_pylist()]
    top = {name: min(4, v.table.num_rows) for name, v in vocabularies.items()}
    rows = [
        {"clip_id": c, "vocab": name, "caption_index": list(range(n)), "score": [0.9 - 0.1 * i for i in range(n)]}
        for c in clip_ids
        for name, n in top.items()
    ]
    Path(work_part(output, "topk", unit.id)).parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=TOPK_SCHEMA), work_part(output, "topk", unit.id))
    counts = []
    for name, v in vocabularies.items():
        ids = sorted(v.table["caption_id"].to_pylist())
        counts += [
            {"vocab": name, "caption_id": ids[i], "count": frequencies.get(name, {}).get(i, 1)}
            for i in range(top[name])
        ]
    frequency_url = str(root / "topk_frequency.parquet")
    frequency = pa.Table.from_pylist(counts, schema=COUNT_SCHEMA)
    pq.write_table(frequency, frequency_url)
    settings = AssembleSettings(
        output,
        vocab,
        tuple((name, vocabularies[name].version) for name in sorted(vocabularies)),
        frequency_url,
        frequency_digest(frequency),
        "test-run",
        Balancing(labels_per_vocabulary={"llm_long": 1, "tags": 1, "rater_long": 2}),
        Prompts(**prompts),
    )
    return unit, settings


def test_draws_follow_one_over_the_global_frequency(tmp_path):
    """The most similar tag is in every clip's top 4 a thousand times as often as the others:
    it is drawn about once in 3,000 clips (1 / frequency), not once in four."""
    rows = assemble(tmp_path, {"tags": {0: 1000}})
    common = next(c.caption_id for c in rows[0].candidates if c.vocab == "tags")  # caption 0: the best
    drawn = [c.caption_id for r in rows for c in r.labels if c.vocab == "tags"]
    assert len(drawn) == len(CLIPS) and drawn.count(common) <= 3
    others = {cid: drawn.count(cid) for cid in set(drawn) - {common}}
    assert len(others) == 3 and min(others.values()) >= 70  # the rest split evenly (100 each)


@pytest.mark.parametrize("allowed", [False, True])
def test_sentences_of_an_evaluation_file_are_labels_but_no_prompts(tmp_path, allowed):
    rows = assemble(tmp_path, {}, evaluation_sentences=allowed)
    for row in rows:
        rater = [c.text for c in row.labels if c.vocab == "rater_long"]
        assert len(rater) == 2 and set(rater) <= set(RATER)
        assert (set(rater) <= set(row.prompt_candidates)) == allowed
        assert [c.text for c in row.labels if c.vocab == "llm_long"][0] in row.prompt_candidates


def test_inputs_rewritten_in_place_are_read_anew_and_inputs_changed_under_a_run_refused(tmp_path):
    """A worker keeps what it loaded between units, keyed by content: a run in the same place
    whose frequencies or vocabularies differ reads them anew; a worker that finds other vocabularies or
    frequencies than the run planned with draws nothing."""

    def best_tag_drawn(rows: list) -> int:
        best = next(c.caption_id for c in rows[0].candidates if c.vocab == "tags")
        return [c.caption_id for r in rows for c in r.labels if c.vocab == "tags"].count(best)

    assert best_tag_drawn(assemble(tmp_path, {"tags": {0: 1000}})) <= 3
    shutil.rmtree(tmp_path / "labels")
    assert best_tag_drawn(assemble(tmp_path, {})) >= 50  # equal counts: a quarter of the draws
    shutil.rmtree(tmp_path / "labels")
    moods = [(text, "mood") for text, _ in TAGS]  # the same captions (and counts), other aspects
    assert {c.aspect for r in assemble(tmp_path, {}, moods) for c in r.labels if c.vocab == "tags"} == {"mood"}
    unit, settings = planned(tmp_path / "vocab-changed", {})
    tags = [("jazz", "genre"), ("fast", "tempo")]
    write_vocabularies(tmp_path / "vocab-changed" / "vocab", tags=tags, rater_long=RATER, evaluation=True)
    with pytest.raises(InputsChanged, match="vocabulary tags changed while labels were drawn"):
        assemble_unit(unit, settings)
    unit, settings = planned(tmp_path / "counts-changed", {})
    pq.write_table(pq.read_table(settings.frequency_url).slice(1), settings.frequency_url)
    with pytest.raises(InputsChanged, match="caption frequencies changed while labels were drawn"):
        assemble_unit(unit, settings)
    assert not any(tmp_path.glob(f"*/labels/{LABELS_DIR}"))
