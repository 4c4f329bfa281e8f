"""The generation run's task and work folder, and its units' sentences into the long-form vocabulary."""

import collections
import os

import pyarrow.parquet as pq

from labeling.vocab.cleaning.corpus_rules import Deduplicator
from labeling.vocab.config import CleaningConfig, PromptConfig, VocabConfig
from labeling.vocab.generation import GenerationUnit, add_unit_sentences, generate_unit, generation_task, remove_work
from labeling.vocab.prompts import combination_prompts
from labeling.vocab.writer import VocabularyWriter


def test_the_work_folder_is_named_for_what_makes_the_parts(tmp_path):
    output = str(tmp_path / "vocab")
    base = generation_task(VocabConfig(output=output))
    assert base.work.startswith(f"{output}/work/") and base.cache is None  # the template backend is not cached
    same = {"llm": {"transformers": {"model_workers": 3}}}
    assert generation_task(VocabConfig(output=output, **same)).work == base.work
    for changed in ({"llm": {"temperature": 0.5}}, {"cleaning": {"min_words": 5}}, {"seed": 1}):
        assert generation_task(VocabConfig(output=output, **changed)).work != base.work
    endpoint = generation_task(VocabConfig(output=output, llm={"backend": "openai", "model": "m"}))
    assert endpoint.cache == f"{output}/llm_cache"


def test_remove_work(tmp_path):
    task = generation_task(VocabConfig(output=str(tmp_path)))
    generate_unit(GenerationUnit(0, tuple(combination_prompts(PromptConfig(combinations=2), seed=0))), task)
    assert os.listdir(task.work)
    remove_work(str(tmp_path))
    assert not (tmp_path / "work").exists()
    remove_work(str(tmp_path))  # nothing left: nothing to do


def test_unit_sentences_pass_the_corpus_wide_rules_into_the_vocabulary(tmp_path):
    prompts = tuple(combination_prompts(PromptConfig(combinations=3), seed=0))
    task = generation_task(VocabConfig(output=str(tmp_path)))
    # Two units asking the same: the second one brings only duplicates.
    units = [GenerationUnit(0, prompts), GenerationUnit(1, prompts)]
    kept = [generate_unit(unit, task)["kept"] for unit in units]
    writer = VocabularyWriter("llm_long", "long_form")
    removed: collections.Counter[str] = collections.Counter()
    add_unit_sentences(task, units, writer, Deduplicator(CleaningConfig()), removed)
    assert writer.count == kept[0] == removed["duplicate"] > 0
    rows = pq.read_table(tmp_path / writer.publish(str(tmp_path))["file"]).to_pylist()
    assert {r["source"] for r in rows} == {"template"}
    assert all('"answer": ' in r["provenance"] for r in rows)
