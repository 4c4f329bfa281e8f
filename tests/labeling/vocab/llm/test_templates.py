import pytest

from labeling.vocab.cleaning.rules import SentenceRules
from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.config import CleaningConfig, LLMConfig, PromptConfig
from labeling.vocab.generation import GenerationTask, GenerationUnit, generate_unit, part_url
from labeling.vocab.llm.backend import Identity, Prompt, make_backend, source_of
from labeling.vocab.llm.cache import AnswerCache, answer_key
from labeling.vocab.llm.templates import TemplateBackend, article
from labeling.vocab.prompts import combination_prompts, describe


def test_the_template_answers_deterministically_from_the_facts():
    backend = make_backend(LLMConfig(), seed=0)
    prompt = Prompt("Describe a song", {"genre": ("lo-fi hip hop",)}, sentences=6)
    answer = backend.generate([prompt])[0]
    lines = answer.splitlines()
    assert len(lines) == 6 and len(set(lines)) == 6
    assert sum("lo-fi hip hop" in line.lower() for line in lines) >= 4  # most patterns name the genre
    assert backend.generate([prompt]) == [answer]
    assert TemplateBackend(LLMConfig(), seed=1).answer(prompt) != answer
    assert backend.identity.source == source_of(LLMConfig()) == "template"


def test_template_sentences_pass_the_cleaning_rules():
    backend = TemplateBackend(LLMConfig(), seed=0)
    rules = SentenceRules(CleaningConfig())
    prompts = list(combination_prompts(PromptConfig(combinations=100), seed=0))
    sentences = [s for p in prompts for s in split_sentences(backend.answer(p)).sentences]
    assert len(sentences) == 500
    assert [s for s in sentences if rules.check(s) is not None] == []
    assert not any(" a a" in s.lower() or " a an " in s.lower() or " an a " in s.lower() for s in sentences)


@pytest.mark.parametrize(
    "word,expected",
    [
        ("uplifting", "an"),
        ("80s", "an"),
        ("18th", "an"),
        ("euphoric", "a"),
        ("1990s", "a"),
        ("calm", "a"),
        ("ambient", "an"),
        ("unison", "a"),
    ],
)
def test_articles(word, expected):
    assert article(word) == expected


def test_combinations_are_seeded_per_index():
    five = list(combination_prompts(PromptConfig(combinations=5), seed=0))
    ten = list(combination_prompts(PromptConfig(combinations=10), seed=0))
    assert ten[:5] == five and len({p.text for p in ten}) == 10
    assert list(combination_prompts(PromptConfig(combinations=5), seed=1)) != five
    assert (
        describe({"genre": ("jazz",), "mood": ("calm",), "instrument": ("piano",), "tempo": ("fast tempo",)})
        == "calm jazz music with piano (fast tempo)"
    )


def test_prompt_templates_are_checked():
    with pytest.raises(ValueError, match=r"unknown field \{genre\}"):
        PromptConfig(song="Describe {title} by {artist} as {genre}")
    with pytest.raises(ValueError, match="not a valid template"):
        PromptConfig(aspects="Describe {description")
    with pytest.raises(ValueError, match="unknown aspect 'colour'"):
        PromptConfig(combination_aspects=["genre", "colour"])
    with pytest.raises(ValueError, match="llm.model is required for the openai backend"):
        LLMConfig(backend="openai")


def test_the_answer_key_covers_backend_model_settings_and_prompt():
    prompt = Prompt("Describe a song", {})
    base = Identity("openai", "m1", {"temperature": 0.8})
    keys = {
        answer_key(base, prompt),
        answer_key(Identity("openai", "m2", {"temperature": 0.8}), prompt),
        answer_key(Identity("openai", "m1", {"temperature": 0.7}), prompt),
        answer_key(Identity("transformers", "m1", {"temperature": 0.8}), prompt),
        answer_key(base, Prompt("Describe another song", {})),
    }
    assert len(keys) == 5
    assert answer_key(base, Prompt("Describe a song", {"genre": ("jazz",)}, origin="corpus:x")) == answer_key(
        base, prompt
    )


def test_a_unit_resumes_from_its_part_then_from_the_cache(tmp_path):
    prompts = tuple(combination_prompts(PromptConfig(combinations=6), seed=0))
    task = GenerationTask(
        LLMConfig(), CleaningConfig(), seed=0, cache=str(tmp_path / "cache"), work=str(tmp_path / "work")
    )
    unit = GenerationUnit(0, prompts)
    first = generate_unit(unit, task)
    assert (first["generated"], first["cached"], first["resumed"]) == (6, 0, False)
    assert first["sentences"] == 30 and first["kept"] == 30
    assert generate_unit(unit, task)["resumed"] is True  # the part exists: nothing is done
    cache_files = sorted((tmp_path / "cache").rglob("*.json"))
    assert len(cache_files) == 6
    # a crash after some answers: the part is gone, one answer is missing, one damaged
    (tmp_path / "work").joinpath(part_url(task, unit).rsplit("/", 1)[-1]).unlink()
    cache_files[0].unlink()
    cache_files[1].write_text('{"answer": ')
    again = generate_unit(unit, task)
    assert (again["generated"], again["cached"], again["resumed"]) == (2, 4, False)
    assert {k: again[k] for k in ("sentences", "kept")} == {k: first[k] for k in ("sentences", "kept")}


def test_the_cache_records_no_secret_and_reads_back(tmp_path):
    cache = AnswerCache(str(tmp_path))
    identity = Identity("openai", "m", {"temperature": 0.0})
    prompt = Prompt("Describe a song", {})
    key = answer_key(identity, prompt)
    assert cache.get(key) is None
    cache.put(key, identity, prompt, "A calm piano piece.")
    assert cache.get(key) == "A calm piano piece."
    assert (tmp_path / key[:2] / f"{key}.json").exists()
