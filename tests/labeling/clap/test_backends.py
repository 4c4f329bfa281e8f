"""The CLAP interface on the `hf`/`random` model class: batch-independent vectors, seeded
random weights that say so, the real architectures, and configs that name what is missing.

Tests use HTSAT-mini (LAION's design at a few percent of the compute); the real
architectures are built on the meta device (no memory, no initialization). The `laion`
backend and its equivalence with this one are tested in test_clap_laion.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from label_inputs import CLAP_TEXTS, clap_windows

from labeling.clap.architectures import ARCHITECTURES, hf_clap_config
from labeling.clap.backend import ClapConfig, ClapError, load_clap
from labeling.clap.random_weights import load_random_clap


def test_an_item_embeds_the_same_whatever_it_is_batched_with():
    clap = load_random_clap(ClapConfig(backend="random", architecture="HTSAT-mini", audio_batch_size=2))
    audio = clap_windows(2)
    together = clap.embed_audio(audio)
    alone = np.concatenate([clap.embed_audio(audio[i : i + 1]) for i in range(2)])
    assert np.array_equal(together, alone)


def test_a_caption_embeds_the_same_whatever_it_is_batched_with():
    clap = load_random_clap(ClapConfig(backend="random", architecture="HTSAT-mini", text_batch_size=3))
    texts = [*CLAP_TEXTS, "rock", "a slow, sad piano ballad with soft strings, recorded close in a small wooden room"]
    alone = np.concatenate([clap.embed_text([text]) for text in texts])
    assert np.array_equal(clap.embed_text(texts), alone)
    assert np.array_equal(clap.embed_text(texts[::-1])[::-1], alone)


@pytest.mark.parametrize("fusion", [False, True])
@pytest.mark.parametrize("name", ["HTSAT-tiny", "HTSAT-base"])
def test_the_real_architectures_build(name, fusion):
    from transformers import ClapModel

    with torch.device("meta"):
        model = ClapModel(hf_clap_config(ARCHITECTURES[name], fusion))
    widths = {"HTSAT-tiny": 768, "HTSAT-base": 1024}
    assert model.audio_projection.linear1.in_features == widths[name]
    assert model.text_model.embeddings.word_embeddings.num_embeddings == 50265  # roberta-base
    assert len(model.text_model.encoder.layer) == 12
    assert hasattr(model.audio_model.audio_encoder.patch_embed, "fusion_model") == fusion


def test_random_weights_are_seeded_and_say_so():
    config = ClapConfig(backend="random", architecture="HTSAT-mini", seed=3, audio_batch_size=2)
    first, again = load_random_clap(config), load_random_clap(config)  # built anew each, not cached
    other = load_random_clap(config.model_copy(update={"seed": 4}))
    audio = clap_windows(2, seconds=3)
    assert np.array_equal(first.embed_audio(audio), again.embed_audio(audio))
    assert not np.allclose(first.embed_audio(audio), other.embed_audio(audio))
    assert first.identity.random_weights and first.identity.checkpoint_sha256 is None
    assert "RANDOM WEIGHTS" in first.identity.description
    assert first.identity.model_id == again.identity.model_id != other.identity.model_id
    texts = first.embed_text(CLAP_TEXTS)
    assert np.linalg.matrix_rank(texts) == len(CLAP_TEXTS)  # the stand-in tokenizer tells captions apart


def test_random_weights_are_the_same_when_built_on_threads():
    """Beam sets its DoFns up on threads of one process; torch's generator is process-wide."""
    config = ClapConfig(backend="random", architecture="HTSAT-mini", seed=5)
    with ThreadPoolExecutor(2) as pool:
        models = list(pool.map(lambda _: load_random_clap(config), range(2)))
    states = [m.model.state_dict() for m in models]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"backend": "laion", "checkpoint": "x.pt"}, "needs clap.tokenizer"),
        ({"backend": "hf"}, "needs clap.model_dir"),
        ({"backend": "random", "checkpoint": "x.pt"}, "clap.checkpoint is set but backend random does not use it"),
    ],
)
def test_config_names_what_a_backend_needs(settings, message):
    with pytest.raises(ValueError, match=message):
        ClapConfig(**settings)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ClapError, match="no config.json"):
        load_clap(ClapConfig(backend="hf", model_dir=str(tmp_path)))
    with pytest.raises(ClapError, match="no such file"):
        load_clap(ClapConfig(backend="laion", checkpoint=str(tmp_path / "630k-best.pt"), tokenizer=str(tmp_path)))
