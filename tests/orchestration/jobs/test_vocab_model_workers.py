"""A local model's generation on the engines' model workers: loaded once per worker, the same sentences everywhere.

The model is the tiny random-weight Llama (tests/tiny_causal_lm.py); the loading, batching,
caching and cleaning are the real ones. Loads are counted from the units' results: each
names the model worker (host, process, a random id drawn when the model was loaded) that
wrote it, so a model loaded per unit would show as many loads as units.
"""

import json

import pytest
import torch
from tiny_causal_lm import build_tiny_causal_lm

from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.llm.backend import make_backend
from labeling.vocab.llm.cache import AnswerCache, answer_key
from labeling.vocab.prompts import combination_prompts
from labeling.vocab.table import read_vocabularies
from orchestration.configs.jobs import VocabJob
from orchestration.jobs.vocab import build_vocabularies

PROMPTS = 6
PER_UNIT = 2


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    threads = torch.get_num_threads()  # the backend's cpu_threads sets it for the process
    yield build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "tiny-chat")
    torch.set_num_threads(threads)


def job(model, output, runner: str = "local", workers: int = 2, **llm) -> VocabJob:
    return VocabJob.model_validate(
        {
            "output": str(output),
            "builtin_tags": False,
            "prompts": {"combinations": PROMPTS},
            "llm": {
                "backend": "transformers",
                "model": str(model),
                "max_new_tokens": 24,
                "temperature": 0.0,
                "prompts_per_unit": PER_UNIT,
                **llm,
                # one thread: a model this small is slower with several, and much slower on a busy machine
                "transformers": {"device": "cpu", "cpu_threads": 1, "batch_size": 2, "model_workers": 2},
            },
            # the tiny model writes noise: rules that want real sentences would leave nothing to compare
            "cleaning": {
                "require_music_word": False,
                "min_words": 1,
                "non_descriptive": {},
                "near_duplicate_threshold": None,
            },
            "runner": {"name": runner, "workers": workers},
        }
    )


@pytest.fixture(scope="module")
def local_run(model, tmp_path_factory):
    output = tmp_path_factory.mktemp("local") / "vocab"
    config = job(model, output)
    return config, build_vocabularies(config)


def test_the_local_engine_loads_the_model_once_and_writes_what_the_model_answers(local_run):
    config, summary = local_run
    llm = summary["llm"]
    assert (llm["units"], llm["answers_generated"], llm["answers_cached"]) == (PROMPTS // PER_UNIT, PROMPTS, 0)
    assert llm["model_loads"] == 1

    # The same answers as the backend gives in this process, cached under the same keys.
    prompts = list(combination_prompts(config.prompts, config.seed))
    backend = make_backend(config.llm, config.seed)
    direct = backend.generate(prompts)
    cache = AnswerCache(f"{config.output}/llm_cache")
    assert [cache.get(answer_key(backend.identity, p)) for p in prompts] == direct

    # and the vocabulary is made of their sentences, in prompt order
    sentences = [s for answer in direct for s in split_sentences(answer).sentences]
    texts = read_vocabularies(config.output)["llm_long"].table["text"].to_pylist()
    assert texts and texts == [s for s in dict.fromkeys(sentences) if s in texts]


def test_a_crashed_run_resumes_its_units(model, tmp_path):
    """An answer of the third unit cannot be read from the cache (a file stands where its
    folder must be): the run stops there. Rerun: two units are read back, not generated again."""
    config = job(model, tmp_path / "vocab")
    prompts = list(combination_prompts(config.prompts, config.seed))
    identity = make_backend(config.llm, config.seed).identity
    folders = [answer_key(identity, p)[:2] for p in prompts]
    blocked = {f for f in folders[4:] if f not in folders[:4]}  # stops the third unit, not an earlier one
    assert blocked
    (tmp_path / "vocab" / "llm_cache").mkdir(parents=True)
    for folder in blocked:
        (tmp_path / "vocab" / "llm_cache" / folder).write_text("not a folder")
    with pytest.raises(NotADirectoryError):
        build_vocabularies(config)
    assert not (tmp_path / "vocab" / "manifest.json").exists()

    for folder in blocked:
        (tmp_path / "vocab" / "llm_cache" / folder).unlink()
    summary = build_vocabularies(config)["llm"]
    assert (summary["units_resumed"], summary["answers_cached"], summary["answers_generated"]) == (2, 0, 2)
    assert summary["model_loads"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("runner,loads", [("ray", {2}), ("beam", {1, 2})])
def test_ray_and_beam_load_the_model_once_per_model_worker(model, local_run, tmp_path, runner, loads):
    """Ray: two model actors (beside one CPU worker), both handed a unit at once; Beam: a
    model DoFn per worker thread that gets a bundle (two threads). Three units each time."""
    _, local = local_run
    summary = build_vocabularies(job(model, tmp_path / "vocab", runner=runner, workers=1 if runner == "ray" else 2))
    llm = summary["llm"]
    assert summary["runner"] == runner and llm["units"] == 3 > max(loads)
    assert llm["model_loads"] in loads
    assert summary["vocabularies"]["llm_long"]["version"] == local["vocabularies"]["llm_long"]["version"]
    manifest = json.loads((tmp_path / "vocab" / "manifest.json").read_text())
    assert manifest["llm"]["answers_generated"] == PROMPTS
