"""The CLAP backends: the same weights give the same embeddings in laion-clap's code and in
transformers' ClapModel; checkpoints load safely; broken tokenizers and wrong
architectures stop with a clear error; random weights are deterministic and say so.

Tests use HTSAT-mini (LAION's design at a few percent of the compute); the real
architectures are built on the meta device (no memory, no initialization)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from labeling.clap import ClapConfig, ClapError, load_clap
from labeling.clap_architectures import ARCHITECTURES, architecture, hf_clap_config
from labeling.clap_hf import hf_state_dict_from_laion
from labeling.clap_hf import load_hf_clap
from labeling.clap_laion import build_laion_model, load_laion_clap, read_checkpoint
from labeling.clap_random import load_random_clap
from labeling.clap_tokenizer import stand_in_tokenizer, stand_in_tokenizer_files

TEXTS = ["a calm solo piano piece", "distorted electric guitars and pounding drums", "jazz", "ambient drone, 60 bpm"]


def windows(count: int, seconds: float = 10.0) -> np.ndarray:
    """Tones and noise, different in every window, as CLAP's int16 input."""
    t = np.arange(int(48000 * seconds)) / 48000
    rng = np.random.default_rng(count)
    rows = [0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(len(t)) for i in range(count)]
    out = np.zeros((count, 480000), dtype=np.int16)
    out[:, : len(t)] = (np.asarray(rows) * 32767).astype(np.int16)
    return out


def write_tokenizer(folder) -> str:
    folder.mkdir(exist_ok=True)
    vocab, merges = stand_in_tokenizer_files()
    (folder / "vocab.json").write_bytes(vocab)
    (folder / "merges.txt").write_bytes(merges)
    return str(folder)


def save_both_ways(fusion: bool, folder) -> dict:
    """One random laion-clap model saved both ways: a LAION .pt and an HF folder."""
    from transformers import ClapFeatureExtractor, ClapModel

    torch.manual_seed(1)
    model = build_laion_model(architecture("HTSAT-mini"), fusion)
    with torch.no_grad():  # running statistics as a trained model has them, not the identity
        model.audio_branch.bn0.running_mean.normal_()
        model.audio_branch.bn0.running_var.uniform_(0.5, 2.0)
    state = model.state_dict()
    # As LAION saved theirs: DistributedDataParallel names, epoch and state_dict.
    torch.save({"epoch": 15, "state_dict": {f"module.{k}": v for k, v in state.items()}}, folder / "laion.pt")
    hf = ClapModel(hf_clap_config(architecture("HTSAT-mini"), fusion))
    missing, unexpected = hf.load_state_dict(hf_state_dict_from_laion(state), strict=False)
    assert not unexpected and all(k.endswith(("position_ids", "token_type_ids")) for k in missing)
    hf.save_pretrained(folder / "hf")
    stand_in_tokenizer().save_pretrained(folder / "hf")
    ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation="fusion" if fusion else "rand_trunc").save_pretrained(folder / "hf")
    return {"fusion": fusion, "pt": str(folder / "laion.pt"), "hf": str(folder / "hf"),
            "tokenizer": write_tokenizer(folder / "tokenizer"), "state": state, "folder": folder}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return save_both_ways(False, tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def fusion_checkpoints(tmp_path_factory):
    return save_both_ways(True, tmp_path_factory.mktemp("fusion"))


def laion_config(ckpt, **overrides) -> ClapConfig:
    settings = {"backend": "laion", "architecture": "HTSAT-mini", "fusion": ckpt["fusion"], "checkpoint": ckpt["pt"],
                "tokenizer": ckpt["tokenizer"]}
    return ClapConfig(**{**settings, **overrides})


@pytest.mark.parametrize("variant", ["checkpoints", "fusion_checkpoints"])
def test_laion_and_hf_give_the_same_embeddings(variant, request):
    checkpoints = request.getfixturevalue(variant)
    laion = load_laion_clap(laion_config(checkpoints, audio_batch_size=2))
    hf = load_hf_clap(ClapConfig(backend="hf", model_dir=checkpoints["hf"], audio_batch_size=2))
    audio = windows(3)
    a, b = laion.embed_audio(audio), hf.embed_audio(audio)
    assert a.shape == (3, 512) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=2e-5)
    assert not np.allclose(a[0], a[1], atol=1e-3)  # different audio, different vectors
    np.testing.assert_allclose(laion.embed_text(TEXTS), hf.embed_text(TEXTS), atol=2e-5)
    assert laion.identity.checkpoint_sha256 and not laion.identity.random_weights
    assert laion.identity.model_id != hf.identity.model_id


def test_an_item_embeds_the_same_whatever_it_is_batched_with(checkpoints):
    clap = load_clap(ClapConfig(backend="hf", model_dir=checkpoints["hf"], audio_batch_size=2))
    audio = windows(3)
    together = clap.embed_audio(audio)
    alone = np.concatenate([clap.embed_audio(audio[i:i + 1]) for i in range(3)])
    assert np.array_equal(together, alone)


def test_checkpoints_load_without_unpickling_code(checkpoints, tmp_path):
    from safetensors.torch import save_file

    state = read_checkpoint(checkpoints["pt"], allow_pickle=False)
    assert "text_branch.embeddings.word_embeddings.weight" in state and not any(k.startswith("module.") for k in state)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "laion.safetensors")
    from_safetensors = load_clap(laion_config(checkpoints, checkpoint=str(tmp_path / "laion.safetensors")))
    np.testing.assert_allclose(from_safetensors.embed_text(TEXTS[:2]), load_clap(laion_config(checkpoints)).embed_text(TEXTS[:2]))
    # A training script's argparse Namespace beside the weights: plain pickle, refused by default.
    torch.save({"state_dict": checkpoints["state"], "args": argparse.Namespace(lr=1e-4)}, tmp_path / "with_args.pt")
    with pytest.raises(ClapError, match="allow_pickle"):
        read_checkpoint(str(tmp_path / "with_args.pt"), allow_pickle=False)
    assert len(read_checkpoint(str(tmp_path / "with_args.pt"), allow_pickle=True)) == len(state)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ClapError, match="broken.pt"):
        read_checkpoint(str(tmp_path / "broken.pt"), allow_pickle=False)


def test_a_checkpoint_of_another_architecture_is_refused(checkpoints):
    with pytest.raises(ClapError, match="does not fit architecture HTSAT-mini with fusion"):
        load_clap(laion_config(checkpoints, fusion=not checkpoints["fusion"]))


def test_degenerate_tokenizers_stop_the_run(checkpoints, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ClapError, match="no RoBERTa tokenizer files"):
        load_clap(laion_config(checkpoints, tokenizer=str(empty)))
    # What an offline download leaves: special tokens only, every sentence the same.
    specials = tmp_path / "specials"
    specials.mkdir()
    (specials / "vocab.json").write_text(json.dumps({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}))
    (specials / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ClapError, match="special tokens only"):
        load_clap(laion_config(checkpoints, tokenizer=str(specials)))


@pytest.mark.parametrize("fusion", [False, True])
@pytest.mark.parametrize("name", ["HTSAT-tiny", "HTSAT-base"])
def test_the_real_architectures_build(name, fusion):
    from transformers import ClapModel

    with torch.device("meta"):
        model = ClapModel(hf_clap_config(ARCHITECTURES[name], fusion))
    widths = {"HTSAT-tiny": 768, "HTSAT-base": 1024}
    assert model.audio_projection.linear1.in_features == widths[name]
    assert model.text_model.embeddings.word_embeddings.num_embeddings == 50265   # roberta-base
    assert len(model.text_model.encoder.layer) == 12
    assert hasattr(model.audio_model.audio_encoder.patch_embed, "fusion_model") == fusion


def test_random_weights_are_seeded_and_say_so():
    first = load_random_clap(ClapConfig(backend="random", architecture="HTSAT-mini", seed=3))
    again = load_random_clap(ClapConfig(backend="random", architecture="HTSAT-mini", seed=3))   # built anew, not cached
    other = load_random_clap(ClapConfig(backend="random", architecture="HTSAT-mini", seed=4))
    audio = windows(2, seconds=3)
    assert np.array_equal(first.embed_audio(audio), again.embed_audio(audio))
    assert not np.allclose(first.embed_audio(audio), other.embed_audio(audio))
    assert first.identity.random_weights and first.identity.checkpoint_sha256 is None
    assert "RANDOM WEIGHTS" in first.identity.description
    assert first.identity.model_id == again.identity.model_id != other.identity.model_id
    texts = first.embed_text(TEXTS)
    assert np.linalg.matrix_rank(texts) == len(TEXTS)  # the stand-in tokenizer tells captions apart


def test_random_weights_are_the_same_when_built_on_threads():
    """Beam sets its DoFns up on threads of one process; torch's generator is process-wide."""
    from concurrent.futures import ThreadPoolExecutor

    config = ClapConfig(backend="random", architecture="HTSAT-mini", seed=5)
    with ThreadPoolExecutor(2) as pool:
        models = list(pool.map(lambda _: load_random_clap(config), range(2)))
    states = [m.model.state_dict() for m in models]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("settings,message", [
    ({"backend": "laion", "checkpoint": "x.pt"}, "needs clap.tokenizer"),
    ({"backend": "hf"}, "needs clap.model_dir"),
    ({"backend": "random", "checkpoint": "x.pt"}, "clap.checkpoint is set but backend random does not use it"),
])
def test_config_names_what_a_backend_needs(settings, message):
    with pytest.raises(ValueError, match=message):
        ClapConfig(**settings)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(ClapError, match="no config.json"):
        load_clap(ClapConfig(backend="hf", model_dir=str(tmp_path)))
    with pytest.raises(ClapError, match="no such file"):
        load_clap(ClapConfig(backend="laion", checkpoint=str(tmp_path / "630k-best.pt"), tokenizer=str(tmp_path)))
