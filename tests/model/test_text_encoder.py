import json
import os

import pytest
import torch

from model.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from model.config import ModelConfig, TextEncoderConfig
from model.latent_diffusion import LatentDiffusion
from model.text_encoder import (
    RANDOM_MARKER,
    T5TextEncoder,
    TextEncoderError,
    load_text_encoder,
    train_stand_in_tokenizer,
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    """A folder in transformers' T5 layout (config.json, model.safetensors, tokenizer), as a user's
    t5-base download is: the stand-in saved, its random-weights marker removed."""
    folder = tmp_path_factory.mktemp("t5")
    T5TextEncoder.stand_in("tiny", 16).save(folder)
    config = json.loads((folder / "config.json").read_text())
    del config[RANDOM_MARKER]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_stand_in_tokenizer_is_deterministic_with_t5_special_ids():
    a, b = train_stand_in_tokenizer(), train_stand_in_tokenizer()
    assert a.get_vocab() == b.get_vocab() and len(a) == 512
    assert (a.pad_token_id, a.eos_token_id, a.unk_token_id) == (0, 1, 2)
    ids = a("Genre: Jazz | Instruments: Piano — 漢字 ♪").input_ids
    assert ids[-1] == 1 and 2 not in ids, "byte-level: every text encodes, ending in </s>"


def test_tokens_are_padded_truncated_and_zero_at_padding():
    encoder = T5TextEncoder.stand_in("tiny", 12)
    tokens, mask = encoder.encode(["rock", "a very long prompt " * 10], CPU)
    assert tokens.shape == (2, 12, 64) and mask.shape == (2, 12)
    assert mask[1].all() and mask[0].sum() == 3  # "Ġrock" splits in two here, then </s>
    assert not tokens[0][~mask[0]].any()


def test_the_encoder_stays_frozen():
    encoder = T5TextEncoder.stand_in("tiny", 8)
    encoder.train()
    assert not encoder.model.training and not any(p.requires_grad for p in encoder.parameters())


def test_a_real_layout_folder_loads_and_a_relative_path_is_taken_from_the_checkpoint(t5_folder, caplog):
    encoder = load_text_encoder(TextEncoderConfig(path=t5_folder.name, max_length=16), relative_to=t5_folder.parent)
    assert not encoder.is_random and encoder.source == t5_folder.resolve()
    assert "RANDOM" not in caplog.text
    with pytest.raises(TextEncoderError, match="no config.json"):
        load_text_encoder(TextEncoderConfig(path=str(t5_folder / "missing")))


def test_a_checkpoint_points_at_a_real_encoder_by_absolute_path(t5_folder, tmp_path):
    config = ModelConfig(
        sample_size=2048 * 4, conditioning={"prompt": {"path": os.path.relpath(t5_folder), "max_length": 16}}
    )
    model = LatentDiffusion(config)
    save_checkpoint(tmp_path / "ckpt", model)
    assert not (tmp_path / "ckpt" / "text_encoder").exists()
    assert read_checkpoint_info(tmp_path / "ckpt").config.conditioning.prompt.path == str(t5_folder.resolve())
    loaded = load_checkpoint(tmp_path / "ckpt")
    torch.testing.assert_close(
        loaded.conditioners.text_encoder.encode(["jazz"], CPU)[0],
        model.conditioners.text_encoder.encode(["jazz"], CPU)[0],
    )
