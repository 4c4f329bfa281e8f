"""The `laion` backend: laion-clap runs offline (no network, HF_HUB_OFFLINE unset, no
torchvision), loads LAION-style checkpoints safely, refuses ones of another architecture and
broken tokenizers, and gives the same embeddings as transformers' ClapModel from the same
weights (its state dict mapped onto ClapModel), plain and fusion.

laion-clap itself is imported only in one fresh process with every network call refused;
that process writes its checkpoints and embeddings for the comparisons made here."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from label_inputs import CLAP_TEXTS, clap_windows

from labeling.clap.architectures import architecture, hf_clap_config
from labeling.clap.backend import ClapConfig, ClapError
from labeling.clap.hf import hf_state_dict_from_laion, load_hf_clap
from labeling.clap.laion import _offline_import_guard, load_laion_clap, read_checkpoint
from labeling.clap.tokenizer import stand_in_tokenizer, stand_in_tokenizer_files

ROOT = Path(__file__).resolve().parents[3]

# Every way out to the network fails and is recorded; then laion-clap models are built,
# saved as LAION saves checkpoints (DDP names, epoch, state_dict), and run by the backend.
SCRIPT = r"""
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:80])
    raise OSError("network disabled in this test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse

from pathlib import Path
import numpy as np, torch
from label_inputs import CLAP_TEXTS, clap_windows
from labeling.clap.backend import ClapConfig, ClapError
from labeling.clap.architectures import architecture
from labeling.clap.laion import build_laion_model, load_laion_clap

out, tokenizer = Path(sys.argv[1]), sys.argv[2]
report = {}
for fusion in (False, True):
    name = "fusion" if fusion else "plain"
    torch.manual_seed(1)
    model = build_laion_model(architecture("HTSAT-mini"), fusion)
    with torch.no_grad():  # running statistics as a trained model has them, not the identity
        model.audio_branch.bn0.running_mean.normal_()
        model.audio_branch.bn0.running_var.uniform_(0.5, 2.0)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 15, "state_dict": state}, out / f"{name}.pt")
    config = ClapConfig(backend="laion", architecture="HTSAT-mini", fusion=fusion, checkpoint=str(out / f"{name}.pt"),
                        tokenizer=tokenizer, audio_batch_size=2)
    clap = load_laion_clap(config)
    np.save(out / f"{name}-audio.npy", clap.embed_audio(clap_windows(2)))
    np.save(out / f"{name}-text.npy", clap.embed_text(CLAP_TEXTS))
    report[name] = clap.identity.to_dict()
try:
    load_laion_clap(config.model_copy(update={"fusion": False}))
except ClapError as error:
    report["wrong_architecture"] = str(error)
report.update(attempts=attempts, torchvision="torchvision" in sys.modules)
print(json.dumps(report))
"""


def write_tokenizer(folder: Path) -> str:
    folder.mkdir(exist_ok=True)
    vocab, merges = stand_in_tokenizer_files()
    (folder / "vocab.json").write_bytes(vocab)
    (folder / "merges.txt").write_bytes(merges)
    return str(folder)


@pytest.fixture(scope="module")
def laion_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("laion")
    tokenizer = write_tokenizer(folder / "tokenizer")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_HUB_OFFLINE")}
    env["HF_ENDPOINT"] = "http://192.0.2.1:9"  # unroutable, in case anything still tried
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), tokenizer],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {"folder": folder, "tokenizer": tokenizer, "report": json.loads(result.stdout.strip().splitlines()[-1])}


def test_laion_clap_runs_with_the_network_cut(laion_run):
    report = laion_run["report"]
    assert report["attempts"] == [] and report["torchvision"] is False
    for name in ("plain", "fusion"):
        assert not report[name]["random_weights"] and len(report[name]["checkpoint_sha256"]) == 64
    assert report["plain"]["model_id"] != report["fusion"]["model_id"]


def test_a_checkpoint_of_another_architecture_is_refused(laion_run):
    message = laion_run["report"]["wrong_architecture"]
    assert "does not fit architecture HTSAT-mini with fusion False" in message and "clap.fusion true" in message


@pytest.mark.parametrize("name", ["plain", "fusion"])
def test_laion_and_hf_give_the_same_embeddings(laion_run, name, tmp_path):
    from transformers import ClapFeatureExtractor, ClapModel

    fusion = name == "fusion"
    model = ClapModel(hf_clap_config(architecture("HTSAT-mini"), fusion))
    state = hf_state_dict_from_laion(read_checkpoint(str(laion_run["folder"] / f"{name}.pt"), allow_pickle=False))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith(("position_ids", "token_type_ids")) for k in missing)
    model.save_pretrained(tmp_path)
    stand_in_tokenizer().save_pretrained(tmp_path)
    ClapFeatureExtractor(
        frequency_min=50, frequency_max=14000, truncation="fusion" if fusion else "rand_trunc"
    ).save_pretrained(tmp_path)
    hf = load_hf_clap(ClapConfig(backend="hf", model_dir=str(tmp_path), audio_batch_size=2))
    audio, text = np.load(laion_run["folder"] / f"{name}-audio.npy"), np.load(laion_run["folder"] / f"{name}-text.npy")
    assert audio.shape == (2, 512) and np.allclose(np.linalg.norm(audio, axis=1), 1, atol=1e-5)
    assert not np.allclose(audio[0], audio[1], atol=1e-3)  # different audio, different vectors
    np.testing.assert_allclose(hf.embed_audio(clap_windows(2)), audio, atol=2e-5)
    np.testing.assert_allclose(hf.embed_text(CLAP_TEXTS), text, atol=2e-5)


def test_checkpoints_load_without_unpickling_code(laion_run, tmp_path):
    from safetensors.torch import load_file, save_file

    state = read_checkpoint(str(laion_run["folder"] / "plain.pt"), allow_pickle=False)
    assert "text_branch.embeddings.word_embeddings.weight" in state and not any(k.startswith("module.") for k in state)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "laion.safetensors")
    from_safetensors = read_checkpoint(str(tmp_path / "laion.safetensors"), allow_pickle=False)
    assert set(from_safetensors) == set(state) and all(torch.equal(from_safetensors[k], state[k]) for k in state)
    assert load_file(tmp_path / "laion.safetensors").keys() == state.keys()
    # A training script's argparse Namespace beside the weights: plain pickle, refused by default.
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "with_args.pt")
    with pytest.raises(ClapError, match="allow_pickle"):
        read_checkpoint(str(tmp_path / "with_args.pt"), allow_pickle=False)
    assert len(read_checkpoint(str(tmp_path / "with_args.pt"), allow_pickle=True)) == len(state)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ClapError, match="broken.pt"):
        read_checkpoint(str(tmp_path / "broken.pt"), allow_pickle=False)


def test_degenerate_tokenizers_stop_the_run(laion_run, tmp_path):
    def config(tokenizer: Path) -> ClapConfig:
        return ClapConfig(
            backend="laion",
            architecture="HTSAT-mini",
            checkpoint=str(laion_run["folder"] / "plain.pt"),
            tokenizer=str(tokenizer),
        )

    (tmp_path / "empty").mkdir()
    with pytest.raises(ClapError, match="no RoBERTa tokenizer files"):
        load_laion_clap(config(tmp_path / "empty"))
    # What an offline download leaves: special tokens only, every sentence the same.
    specials = tmp_path / "specials"
    specials.mkdir()
    (specials / "vocab.json").write_text(json.dumps({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}))
    (specials / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ClapError, match="special tokens only"):
        load_laion_clap(config(specials))


def test_a_working_torchvision_is_used_not_replaced(tmp_path, monkeypatch):
    package = tmp_path / "torchvision"
    (package / "ops").mkdir(parents=True)
    (package / "__init__.py").write_text("REAL = True\n")
    (package / "ops" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    original = transformers.RobertaTokenizer.from_pretrained
    try:
        with _offline_import_guard():
            assert getattr(sys.modules["torchvision"], "REAL", False)
            assert transformers.RobertaTokenizer.from_pretrained("roberta-base").__class__.__name__ == "_Unavailable"
        assert transformers.RobertaTokenizer.from_pretrained == original
    finally:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]


def test_the_stand_in_is_removed_after_import():
    with _offline_import_guard():
        assert "torchvision" in sys.modules and not hasattr(sys.modules["torchvision"], "REAL")
    assert "torchvision" not in sys.modules
