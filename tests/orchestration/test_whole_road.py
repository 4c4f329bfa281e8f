"""`soundry run` end to end on a few synthesized files, every stage really run at toy size:
curate, vocab, label (random CLAP), publish, train-vae, encode, train, sample, eval; then the
same command again finds every stage done, and a changed eval config measures again."""

import io
import json

import pyarrow.parquet as pq
import pytest
import soundfile
from audio_files import music_like, write_audio
from rich.console import Console

from orchestration.configs.pipeline import PipelineConfig
from orchestration.configs.resolve import ConfigError
from orchestration.jobs.pipeline import run_pipeline
from shards.manifest import read_manifest
from shards.writer import SHARDS_DIR

STAGES = [
    "curated",
    "vocab",
    "analysis",
    "labels",
    "versions/v1",
    "vae",
    "versions/v1-latents",
    "train",
    "samples",
    "eval",
]


def pipeline(tmp_path, **changes) -> PipelineConfig:
    raw = tmp_path / "raw"
    for i in range(4):
        write_audio(raw / f"piece {i}.wav", music_like(3.0, seed=i), 44100)
    return PipelineConfig.model_validate(
        {
            "run_dir": str(tmp_path / "run"),
            "inputs": [{"path": str(raw), "license": "CC0-1.0"}],
            "runner": {"name": "local", "workers": 1},
            "curate": {"segment": {"window_s": 1.5, "min_clip_s": 1.0}},
            "vocab": {"builtin_tags": False, "prompts": {"combinations": 4}},
            "analyze": {},
            "label": {"clap": {"backend": "random", "architecture": "HTSAT-mini", "threads": 1}},
            "publish": {"splits": {"fractions": {"train": 1.0}}, "shards": {"min_shards": 2}},
            "vae": {
                "model": "tiny",
                "sample_size": 8192,
                "max_steps": 2,
                "adversarial_start": 1,
                "log_every": 1,
                "checkpoint_every": 2,
                "data": {"batch_size": 2, "workers": 0},
                "losses": {"discriminator_filters": 4, "fft_sizes": [256, 64], "discriminator_ffts": [256]},
            },
            "encode": {"threads": 1},
            "train": {
                "model": "tiny",
                "sample_size": 16384,
                "max_steps": 2,
                "log_every": 1,
                "checkpoint_every": 2,
                "data": {"batch_size": 2, "workers": 0},
                "demo": {"prompts": ["Calm"], "seconds": 0.2, "steps": 2, "cfg_scales": [3.0]},
            },
            "sample": {"prompts": ["Genre: Ambient"], "seconds": 0.5, "steps": 3},
            "eval": {"reference_split": "train", "max_clips": 2, "steps": 2, "generation_batch_size": 2},
            **changes,
        }
    )


@pytest.mark.slow
def test_raw_audio_to_samples_and_a_rerun_skips_every_stage(tmp_path):
    config = pipeline(tmp_path)
    first = run_pipeline(config, Console(quiet=True))
    assert [s["stage"] for s in first["stages"]] == STAGES and {s["status"] for s in first["stages"]} == {"ran"}
    run = tmp_path / "run"
    audio, rate = soundfile.read(run / "samples" / "sample-0.wav")
    assert rate == 44100 and audio.shape == (22050, 2)
    assert "latent.npy" in read_manifest(str(run / "versions" / "v1-latents"))["members"]
    train_summary = json.loads((run / "stages" / "train.json").read_text())["summary"]
    assert train_summary["step"] == 2
    assert json.loads((run / "report.json").read_text()) == first["stages"]
    # The analysis joined into the labels and the samples (1.5 s clips: too short, every fact unknown, confidence 0).
    assert set(pq.read_table(run / "labels" / "labels", columns=["bpm_confidence"])["bpm_confidence"].to_pylist()) == {
        0
    }
    sidecars = pq.read_table(next((run / "versions" / "v1" / SHARDS_DIR).glob("*.parquet")), columns=["music"])
    assert all(m["bpm_confidence"] == 0 and m["bpm"] is None for m in sidecars["music"].to_pylist())
    evaluation = json.loads((run / "eval" / "eval.json").read_text())
    assert (
        evaluation["generation"]["checkpoint"] == str(run / "train" / "final") and evaluation["generation"]["step"] == 2
    )
    assert sorted(p.stem for p in (run / "eval" / "generated").iterdir()) == sorted(
        row["name"] for row in pq.read_table(run / "eval" / "per_clip.parquet").to_pylist()
    )
    figures = first["stages"][-1]["figures"]
    assert figures["clips"] == 2 and figures["fad"] == evaluation["fad"] and figures["random_clap_weights"] is True

    printed = io.StringIO()
    again = run_pipeline(config, Console(file=printed, width=400))
    assert {s["status"] for s in again["stages"]} == {"skipped (done)"}
    # The version's explorer page, whose path the demo prints last.
    page = run / "versions" / "v1" / "explore" / "index.html"
    assert page.exists() and f"explorer page: {page}" in printed.getvalue()
    # A skipped eval still ends the run with its figures, marked as coming from random weights.
    assert f"eval (2 clips, model step 2): FAD {figures['fad']:.4f}" in printed.getvalue()
    assert "random weights: CLAP" in printed.getvalue()
    assert again["stages"][-1]["figures"] == figures
    # Nothing reads the eval stage: another config measures again (a third clip) instead of being refused.
    changed = run_pipeline(pipeline(tmp_path, eval={**config.eval, "max_clips": 3}), Console(quiet=True))
    assert [s["status"] for s in changed["stages"]][-2:] == ["skipped (done)", "ran"]
    assert changed["stages"][-1]["figures"]["clips"] == 3 and len(list((run / "eval" / "generated").iterdir())) == 3
    with pytest.raises(ConfigError, match="another configuration"):
        run_pipeline(pipeline(tmp_path, train={**config.train, "max_steps": 3}), Console(quiet=True))
