"""Decoding one sample into its batch row, and collating examples into a TrainingBatch."""

from __future__ import annotations

import io
import random

import numpy as np
import soundfile
import torch

from shards.loader.batch import TrainingBatch
from shards.loader.config import LoaderConfig
from shards.loader.examples import AudioRows, collate, decode_audio

RATE = 8000


def flac(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def test_mono_is_decoded_into_both_channels_of_its_row_and_padded():
    mono = (np.sin(np.arange(RATE) / 7) * 0.5).astype(np.float32)
    config = LoaderConfig(sample_size=RATE + 500, channels=2, random_crop=False)
    rows = AudioRows(1, config.sample_size, 2)
    out, mask = rows.next_row()
    offset, rate = decode_audio({"flac": flac(mono)}, config, random.Random(0), out, mask)
    assert (offset, rate) == (0, RATE)
    np.testing.assert_allclose(out[:RATE, 0], mono, atol=1 / 32768)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    assert mask.sum() == RATE and not out[RATE:].any()


def example(key: str, clap: np.ndarray | None) -> dict:
    return {
        "key": key,
        "prompt": f"prompt {key}",
        "seconds_start": 1,
        "seconds_total": 30,
        "clap": clap,
        "latent": np.ones((4, 6), np.float32),
        "mask": np.ones(6, bool),
    }


def test_audio_rows_collate_to_a_training_batch():
    rows = AudioRows(2, 10, 2)
    for value in (1.0, 2.0):
        out, mask = rows.next_row()
        out[:], mask[:] = value, True
        rows.commit()
    batch = collate([example("a", np.zeros(3, np.float32)), example("b", np.ones(3, np.float32))], rows)
    assert set(batch) == TrainingBatch.__required_keys__ | {"audio", "clap"}
    assert batch["audio"].shape == (2, 2, 10) and batch["audio"][1].eq(2.0).all()
    assert batch["clap"].shape == (2, 3) and batch["key"] == ["a", "b"] and batch["prompt"] == ["prompt a", "prompt b"]
    assert batch["seconds_start"].dtype == batch["seconds_total"].dtype == torch.float32


def test_latents_collate_and_clap_is_left_out_unless_every_example_has_one():
    batch = collate([example("a", np.zeros(3, np.float32)), example("b", None)], None)
    assert set(batch) == TrainingBatch.__required_keys__ | {"latents"}
    assert batch["latents"].shape == (2, 4, 6) and batch["padding_mask"].shape == (2, 6)
