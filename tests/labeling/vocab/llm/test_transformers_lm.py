"""The transformers backend with a tiny random-weight Llama and a tokenizer trained here."""

import shutil

import pytest
import torch
from tiny_causal_lm import build_tiny_causal_lm

from labeling.vocab.config import CleaningConfig, LLMConfig
from labeling.vocab.generation import GenerationTask, GenerationUnit, generate_unit
from labeling.vocab.llm.backend import LLMError, Prompt, make_backend


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    threads = torch.get_num_threads()  # the backend's cpu_threads sets it for the process
    folder = tmp_path_factory.mktemp("models")
    yield build_tiny_causal_lm(folder / "tiny-chat"), build_tiny_causal_lm(folder / "tiny-base", chat_template=False)
    torch.set_num_threads(threads)


def llm(model, **options) -> LLMConfig:
    # One thread: a model this small is slower with several, and much slower on a busy machine.
    return LLMConfig(
        backend="transformers",
        model=str(model),
        max_new_tokens=12,
        temperature=0.0,
        transformers={"batch_size": options.pop("batch_size", 4), "device": "cpu", "cpu_threads": 1},
        **options,
    )


def prompts(n: int) -> list[Prompt]:
    return [Prompt(f"Describe the music of song number {i} in short sentences.", {}) for i in range(n)]


def test_batched_generation_answers_each_prompt_as_one_by_one(tiny_models):
    chat, _ = tiny_models
    batched = make_backend(llm(chat, batch_size=3))
    single = make_backend(llm(chat, batch_size=1))
    received = []
    answers = batched.generate(prompts(5), lambda i, answer: received.append(i))
    assert received == [0, 1, 2, 3, 4] and len(answers) == 5
    assert all(isinstance(a, str) and a for a in answers)
    assert answers == single.generate(prompts(5))  # left padding does not change a greedy answer
    assert batched.identity.source == "llm:tiny-chat"
    assert batched.identity.settings["dtype"] == "float32" and batched.identity.settings["chat_template"] is True


def test_the_chat_template_wraps_prompts_when_the_tokenizer_has_one(tiny_models):
    chat, base = tiny_models
    prompt = prompts(1)[0]
    assert make_backend(llm(chat)).render(prompt) == f"<s>[user] {prompt.text}\n[assistant] "
    plain = make_backend(llm(base))
    assert plain.render(prompt) == prompt.text and plain.identity.settings["chat_template"] is False


def test_the_fingerprint_tells_other_weights_apart(tiny_models, tmp_path):
    chat, _ = tiny_models
    copy = shutil.copytree(chat, tmp_path / "tiny-chat")
    other = build_tiny_causal_lm(tmp_path / "other" / "tiny-chat", seed=1)
    fingerprint = make_backend(llm(chat)).identity.settings["fingerprint"]
    assert make_backend(llm(copy)).identity.settings["fingerprint"] == fingerprint
    assert make_backend(llm(other)).identity.settings["fingerprint"] != fingerprint


def test_generation_units_cache_and_resume(tiny_models, tmp_path):
    chat, _ = tiny_models
    task = GenerationTask(
        llm(chat), CleaningConfig(), seed=0, cache=str(tmp_path / "cache"), work=str(tmp_path / "work")
    )
    unit = GenerationUnit(0, tuple(prompts(6)))
    first = generate_unit(unit, task)
    assert (first["generated"], first["cached"]) == (6, 0)
    # noise in, noise out: every sentence is accounted for by a rule or kept
    assert first["sentences"] == first["kept"] + sum(
        n for rule, n in first["removed"].items() if rule != "chat_preamble"
    )
    shutil.rmtree(tmp_path / "work")
    second = generate_unit(unit, task)
    assert (second["generated"], second["cached"]) == (0, 6) and second["removed"] == first["removed"]


@pytest.mark.parametrize(
    "folder,device,message",
    [
        ("missing", "auto", "not a model folder"),
        ("model", "cuda", "no GPU is visible"),
    ],
)
def test_loading_mistakes_are_explained(tiny_models, tmp_path, folder, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    model = tiny_models[0] if folder == "model" else tmp_path / folder
    with pytest.raises(LLMError, match=message):
        make_backend(LLMConfig(backend="transformers", model=str(model), transformers={"device": device}))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_it_runs_in_bfloat16(tiny_models):
    backend = make_backend(LLMConfig(backend="transformers", model=str(tiny_models[0]), max_new_tokens=8))
    assert backend.identity.settings["dtype"] == "bfloat16" and backend.device.type == "cuda"
    assert len(backend.generate(prompts(3))) == 3
