"""`soundry eval` on real audio files with a random-weight CLAP: the label stage's clip vectors,
figures that are finite and repeatable, and one-line errors for input it cannot measure."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile
from rich.console import Console

from curation.core.errors import UserError
from labeling.clap.audio import decode_mono_48k, pool_windows, windows
from labeling.clap.backend import ClapConfig, load_clap
from model.evaluation.audio_folder import audio_files, embed_files
from model.evaluation.config import EvalConfig
from model.evaluation.embedding import ClapEmbedder
from model.evaluation.evaluate import evaluate
from orchestration.cli.evaluate import print_eval_summary
from orchestration.cli.main import main

CLAP = {"backend": "random", "architecture": "HTSAT-mini", "audio_batch_size": 4, "threads": 1}
NAMES = ("bright", "dark", "mid", "noisy")


def _write_clips(folder: Path, base_hz: float, rate: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(int(base_hz))
    t = np.arange(int(1.5 * rate)) / rate
    for i, name in enumerate(NAMES):
        tone = 0.3 * np.sin(2 * np.pi * base_hz * (i + 1) * t) + 0.02 * rng.standard_normal(t.size)
        soundfile.write(folder / f"{name}.wav", np.stack([tone, 0.5 * tone], 1).astype(np.float32), rate)


@pytest.fixture(scope="session")
def folders(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("eval")
    _write_clips(base / "generated", 220.0, 44_100)  # another rate than CLAP's: resampled on reading
    _write_clips(base / "reference", 330.0, 48_000)
    (base / "generated" / "notes.txt").write_text("not audio: passed over")
    (base / "tags.txt").write_text("bright\ndark\nsynth\nnoise\npiano\ndrums\n")
    (base / "prompts.json").write_text(json.dumps({name: f"a {name} synth tone" for name in NAMES}))
    return base


def _config(base: Path, **changes) -> EvalConfig:
    fields = {
        "generated": str(base / "generated"),
        "reference": str(base / "reference"),
        "output": str(base / "out"),
        "prompts": str(base / "prompts.json"),
        "tags": str(base / "tags.txt"),
        "clap": CLAP,
        "clips_per_batch": 3,
    }
    return EvalConfig.model_validate({**fields, **changes})


def test_clip_vectors_are_the_label_stage_ones_whatever_the_batching(folders):
    files = audio_files(str(folders / "generated"), "generated")
    embedder = ClapEmbedder(ClapConfig(**CLAP))
    one_by_one, together = embed_files(files, embedder, 1), embed_files(files, embedder, 4)
    assert np.array_equal(one_by_one, together)
    clap = load_clap(ClapConfig(**CLAP))
    clip_windows = [windows(decode_mono_48k(p.read_bytes())) for p in files]
    label_stage = pool_windows(clap.embed_audio(np.concatenate(clip_windows)), [len(w) for w in clip_windows])
    np.testing.assert_allclose(together, label_stage, rtol=0, atol=1e-6)


def test_report_is_finite_written_and_repeatable(folders):
    config = _config(folders, fad_infinity=True, fad_infinity_points=3)
    report = evaluate(config)
    written = (folders / "out" / "eval.json").read_bytes()
    assert json.loads(written) == json.loads(json.dumps(report))
    assert report["generated"]["clips"] == report["reference"]["clips"] == 4  # notes.txt is not audio
    assert report["embedding"]["random_weights"] is True
    assert np.isfinite(report["fad"]) and report["fad"] > 0
    assert np.isfinite(report["fad_infinity"]["value"]) and len(report["fad_infinity"]["curve"]) == 3
    assert report["kl"]["pairs"] == 4 and np.isfinite(report["kl"]["mean"]) and report["kl"]["mean"] >= 0
    assert report["kl"]["tags"] == {"count": 6, "source": str(folders / "tags.txt")}
    for side in ("generated", "reference"):
        score = report["clap_score"][side]
        assert score["count"] == 4 and -1 <= score["min"] <= score["max"] <= 1
    table = pq.read_table(folders / "out" / "per_clip.parquet").to_pylist()
    assert [row["name"] for row in table] == sorted(NAMES)
    assert all(row["prompt"] == f"a {row['name']} synth tone" and row["tag_kl"] >= 0 for row in table)
    assert np.mean([row["clap_score"] for row in table]) == pytest.approx(report["clap_score"]["generated"]["mean"])
    assert np.mean([row["tag_kl"] for row in table]) == pytest.approx(report["kl"]["mean"])
    page = (folders / "out" / "report.md").read_text()
    assert f"| FAD | {report['fad']:.4f} |" in page and "**random weights**" in page
    assert "![tags.png](tags.png)" in page and "![clap_score.png](clap_score.png)" in page
    plots = {name: (folders / "out" / name).read_bytes() for name in ("tags.png", "clap_score.png")}
    assert all(png.startswith(b"\x89PNG") for png in plots.values())
    evaluate(config)
    assert (folders / "out" / "eval.json").read_bytes() == written
    assert {name: (folders / "out" / name).read_bytes() for name in plots} == plots


def test_figures_go_to_tensorboard_in_a_run_folder(folders, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    report = evaluate(_config(folders, output=str(tmp_path / "out"), tensorboard=str(tmp_path / "run")))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert [e.value for e in events.Scalars("eval/fad")] == [pytest.approx(report["fad"])]
    assert events.Scalars("eval/clap_score_generated")[0].value == pytest.approx(
        report["clap_score"]["generated"]["mean"]
    )
    assert {"eval/clap_score_generated", "eval/clap_score_reference"} <= set(events.Tags()["histograms"])
    assert set(events.Tags()["images"]) == {"eval/tags", "eval/clap_score"}


def test_a_folder_against_itself_is_zero(folders):
    report = evaluate(_config(folders, reference=str(folders / "generated"), output=str(folders / "self")))
    assert report["fad"] == pytest.approx(0.0, abs=1e-9)
    assert report["kl"]["max"] == pytest.approx(0.0, abs=1e-9)


def test_command_prints_the_figures(folders, capsys):
    out = folders / "cli"
    args = ["eval", "--generated", str(folders / "generated"), "--reference", str(folders / "reference")]
    args += ["--output", str(out), "--prompts", str(folders / "prompts.json"), "--clips_per_batch", "4"]
    args += [f"--clap.{key}={value}" for key, value in CLAP.items()]
    assert main(args) == 0
    printed = capsys.readouterr().err
    assert "FAD" in printed and "tag KL" in printed and "RANDOM WEIGHTS" in printed
    assert json.loads((out / "eval.json").read_text())["kl"]["tags"]["source"].startswith("builtin")
    assert json.loads((out / "eval.json").read_text())["fad"] == pytest.approx(
        json.loads((folders / "out" / "eval.json").read_text())["fad"]
    )


def _one_clip(folder: Path) -> None:
    folder.mkdir()
    soundfile.write(folder / "only.wav", np.zeros(4800, dtype=np.float32), 48_000)


@pytest.mark.parametrize(
    ("make", "option", "message"),
    [
        (lambda f: f.mkdir(), "generated", "no audio files"),
        (lambda f: (f.mkdir(), (f / "bright.wav").write_bytes(b"RIFF not a wave")), "generated", "not readable"),
        (_one_clip, "reference", "a covariance needs at least 2 clips, got 1"),
        (lambda f: (_one_clip(f), (f / "only.flac").write_bytes(b"")), "reference", "only.flac and only.wav share"),
        (lambda f: f.write_text('{"nobody": "a tone"}'), "prompts", "names no file of the generated folder"),
        (lambda f: f.write_text("[1, 2]"), "prompts", "must be a JSON object"),
    ],
)
def test_bad_input_is_one_line_naming_it(folders, tmp_path, capsys, make, option, message):
    bad = tmp_path / "bad"
    make(bad)
    args = ["eval", "--generated", str(folders / "generated"), "--reference", str(folders / "reference")]
    args += ["--output", str(tmp_path / "out"), "--prompts", str(folders / "prompts.json")]
    args += [f"--clap.{key}={value}" for key, value in CLAP.items()]
    args[args.index(f"--{option}") + 1] = str(bad)
    assert main(args) == 2
    printed = capsys.readouterr().err
    assert message in printed and "Traceback" not in printed
    assert len(printed.strip().splitlines()) == 1 and str(bad) in printed
    assert not (tmp_path / "out" / "eval.json").exists()


def test_an_hf_checkpoint_folder_embeds_through_the_label_stage_loader(folders, tmp_path):
    # The random model saved as an HF-format folder: the hf backend's real loading code, same vectors.
    from transformers import ClapFeatureExtractor

    from labeling.clap.random_weights import load_random_clap
    from labeling.clap.tokenizer import stand_in_tokenizer

    load_random_clap(ClapConfig(**CLAP)).model.save_pretrained(tmp_path)
    stand_in_tokenizer().save_pretrained(tmp_path)
    ClapFeatureExtractor(frequency_min=50, frequency_max=14000, truncation="rand_trunc").save_pretrained(tmp_path)
    files = audio_files(str(folders / "reference"), "reference")
    hf = ClapEmbedder(ClapConfig(backend="hf", model_dir=str(tmp_path), audio_batch_size=4, threads=1))
    assert hf.description["backend"] == "hf" and hf.description["random_weights"] is False
    np.testing.assert_allclose(
        embed_files(files, hf, 4), embed_files(files, ClapEmbedder(ClapConfig(**CLAP)), 4), rtol=0, atol=2e-5
    )


def test_a_version_split_as_the_reference(split_version, tmp_path):
    # The split's own FLAC bytes as files named by clip_id: every clip pairs with itself.
    from shards.loader.tars import read_tar_samples
    from shards.manifest import read_manifest, shard_urls

    copies = tmp_path / "copies"
    copies.mkdir()
    for url in shard_urls(split_version, read_manifest(split_version), ["valid"]):
        for sample in read_tar_samples(url):
            (copies / f"{sample['__key__']}.flac").write_bytes(sample["flac"])
    base = {"generated": str(copies), "reference": split_version, "output": str(tmp_path / "out"), "clap": CLAP}
    config = EvalConfig.model_validate({**base, "reference_split": "valid", "tags": None, "clips_per_batch": 2})
    report = evaluate(config)
    clips = len(list(copies.iterdir()))
    assert clips >= 2 and report["reference"]["clips"] == report["kl"]["pairs"] == clips
    assert report["reference"]["set"] == f"reference {split_version} split valid"
    assert report["fad"] == pytest.approx(0.0, abs=1e-9) and report["kl"]["max"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(UserError, match="has no split test"):
        evaluate(EvalConfig.model_validate(base))


def test_generating_from_a_checkpoint_for_a_version_split(split_version, tmp_path):
    checkpoint, generated = tmp_path / "tiny", tmp_path / "generated"
    assert main(["model-init", str(checkpoint), "--sample_size", str(2048 * 24)]) == 0
    base = {"generated": str(generated), "reference": split_version, "output": str(tmp_path / "out"), "clap": CLAP}
    config = EvalConfig.model_validate(
        {**base, "reference_split": "valid", "checkpoint": str(checkpoint), "steps": 2, "seed": 7, "tags": None}
    )
    report = evaluate(config)
    files = sorted(generated.iterdir())
    assert [p.suffix for p in files] == [".wav"] * report["reference"]["clips"]
    assert report["kl"]["pairs"] == len(files) and np.isfinite(report["fad"])
    assert report["generation"]["weights"] == "random" and report["generation"]["seed"] == 7
    assert soundfile.info(files[0]).duration == pytest.approx(1.0, abs=0.01)  # the reference clip's length
    assert len({p.read_bytes() for p in files}) == len(files)  # each clip its own noise
    first = files[0].read_bytes()
    written = (tmp_path / "out" / "eval.json").read_bytes()
    files[0].unlink()  # an interrupted run: the missing clip is made again, the same, from its own seed
    evaluate(config)
    assert files[0].read_bytes() == first and (tmp_path / "out" / "eval.json").read_bytes() == written
    printed = io.StringIO()
    print_eval_summary(report, "eval.json", Console(file=printed, width=200))
    assert f"{checkpoint} step 0 (random weights), 2 steps" in printed.getvalue()
    with pytest.raises(UserError, match="checkpoint needs reference to be a published dataset version"):
        evaluate(config.model_copy(update={"reference": str(generated)}))


def test_batched_generation_makes_the_same_clips_as_one_at_a_time(split_version, tmp_path):
    from dataclasses import replace

    from model.evaluation.generate_split import generate_split, split_requests

    checkpoint = tmp_path / "tiny"
    assert main(["model-init", str(checkpoint), "--sample_size", str(2048 * 24)]) == 0
    requests = split_requests(split_version, "train", max_clips=3)
    assert len(requests) == 3
    # Prompts of other token counts and other starts share a batch: padding and timing must not leak across rows.
    prompts = ["Calm", "Genre: Ambient | Moods: Calm, Slow, Dark", "Drums, Bass"]
    requests = [replace(r, prompt=p, seconds_start=i) for i, (r, p) in enumerate(zip(requests, prompts, strict=True))]
    made = {}
    for size in (1, 3):
        folder = tmp_path / f"batch-{size}"
        generate_split(
            str(checkpoint), requests, str(folder), seed=5, steps=2, cfg_scale=None, device="cpu", batch_size=size
        )
        made[size] = {p.name: soundfile.read(p)[0] for p in sorted(folder.iterdir())}
    assert list(made[1]) == list(made[3]) == [f"{r.clip_id}.wav" for r in sorted(requests, key=lambda r: r.clip_id)]
    for name, alone in made[1].items():
        assert alone.shape == made[3][name].shape and np.abs(alone).max() > 0
        np.testing.assert_allclose(made[3][name], alone, rtol=0, atol=2 / 32768)  # 16-bit WAV: a step at most


def test_asked_facts_come_from_fields_or_the_prompt():
    from model.evaluation.control import asked_facts

    assert asked_facts("Piano, 96 bpm, Eb major, calm") == (96.0, "Eb major")
    assert asked_facts("a calm piece in f# minor at 120.5 BPM") == (120.5, "F# minor")
    assert asked_facts("Piano, 96 bpm", {"bpm": ["100"], "key": ["A minor"]}) == (100.0, "A minor")
    assert asked_facts("calm piano") == (None, None) and asked_facts(None, {"key": ["H major"]}) == (None, None)


def test_control_accuracy_of_generated_and_reference_music(tmp_path):
    pytest.importorskip("librosa")
    from music_signals import SR, chord_progression, click_track

    c_major = chord_progression("C", ["C:maj", "G:maj", "A:min", "F:maj"], 100.0, 10.0)
    a_minor = chord_progression("A", ["A:min", "D:min", "E:maj", "A:min"], 132.0, 8.0)
    (tmp_path / "tags.txt").write_text("piano\nclicks\nnoise\n")
    noise = np.random.default_rng(5).standard_normal(SR * 5).astype(np.float32) * 0.1
    sides = {
        "reference": {"c-major": c_major, "a-minor": a_minor, "clicks": click_track(120.0, 6.0), "noise": noise},
        # The model got C major right, and made C major at 100 bpm where A minor at 132 was asked.
        "generated": {"c-major": c_major, "a-minor": c_major, "clicks": click_track(120.0, 6.0), "noise": noise},
    }
    for side, clips in sides.items():
        (tmp_path / side).mkdir()
        for name, audio in clips.items():
            soundfile.write(tmp_path / side / f"{name}.wav", audio, SR)
    prompts = {
        "c-major": "Piano, 100 bpm, C major",
        "a-minor": "132 bpm, A minor",
        "clicks": "120 bpm",
        "noise": "hiss",
    }
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    control = evaluate(_config(tmp_path))["control"]
    assert control["clips_asking"] == 3 and control["clips_asking_nothing"] == 1  # "hiss" asks for nothing
    reference, generated = control["reference"], control["generated"]
    assert reference["tempo_clips"] == generated["tempo_clips"] == 3 and reference["key_clips"] == 2
    assert reference["tempo_accuracy1"] == 1.0 and reference["key_exact"] == 1.0  # the analyzer's ceiling
    assert generated["tempo_accuracy1"] == pytest.approx(2 / 3, abs=1e-4) and generated["key_exact"] == 0.5
    assert generated["key_weighted_score"] == pytest.approx((1.0 + 0.3) / 2)  # C major for A minor: its relative


def test_label_shift_divergence_on_constructed_counts():
    from collections import Counter

    from model.evaluation.label_shift import js_divergence, label_shift

    same = Counter({"piano": 3, "calm": 1})
    assert js_divergence(same, Counter({"piano": 6, "calm": 2})) == 0.0
    assert js_divergence(same, Counter({"drums": 2})) == pytest.approx(1.0)
    shift = label_shift((same, 4), (Counter({"piano": 1, "drums": 2}), 2))
    assert shift["only_reference"] == shift["only_generated"] == 1
    assert shift["top_changes"][0] == {"label": "drums", "reference_share": 0.0, "generated_share": 1.0}


def _labeled_copy(version: str, folder: Path) -> str:
    """The version with pseudo-labels written into its samples' json: every train clip "calm"; in
    valid, every second clip "drums" instead (the fixture's versions are unlabeled)."""
    import shutil
    import tarfile

    shutil.copytree(version, folder)
    for shard in sorted((folder / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        with tarfile.open(shard, "w") as tar:
            for i, (member, data) in enumerate(members):
                if member.name.endswith(".json"):
                    record = json.loads(data)
                    drums = shard.name.startswith("valid") and i % 4 < 2
                    record["labels"] = [{"text": "drums" if drums else "calm", "vocab": "tags"}]
                    data = json.dumps(record).encode()
                    member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    return str(folder)


def test_a_version_split_compared_with_another(split_version, tmp_path, capsys):
    labeled = _labeled_copy(split_version, tmp_path / "labeled")
    (tmp_path / "tags.txt").write_text("calm\ndrums\ntone\n")  # a few tags: the built-in thousand cost time
    args = ["eval", "--generated", labeled, "--generated_split", "valid", "--reference", labeled]
    args += ["--reference_split", "train", "--output", str(tmp_path / "out"), "--tags", str(tmp_path / "tags.txt")]
    args += [f"--clap.{key}={value}" for key, value in CLAP.items()]
    assert main(args) == 0
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert report["generated"]["set"] == f"generated {labeled} split valid" and report["fad"] > 0
    shift = report["label_shift"]
    assert 0 < shift["js_divergence_bits"] < 1 and shift["only_generated"] == 1
    moved = {change["label"]: change for change in shift["top_changes"]}
    assert moved.keys() == {"calm", "drums"} and moved["drums"]["reference_share"] == 0
    assert moved["calm"]["reference_share"] == 1 and moved["drums"]["generated_share"] == pytest.approx(
        1 - moved["calm"]["generated_share"]
    )
    assert "label shift" in capsys.readouterr().err
    same = EvalConfig.model_validate(
        {"generated": labeled, "reference": labeled, "reference_split": "train", "generated_split": "train"}
        | {"output": str(tmp_path / "same"), "clap": CLAP, "tags": str(tmp_path / "tags.txt")}
    )
    report = evaluate(same)
    assert report["fad"] == pytest.approx(0.0, abs=1e-9) and report["label_shift"]["js_divergence_bits"] == 0.0


def test_fad_with_encodec_embeddings_from_random_weights_or_a_local_checkpoint(folders, tmp_path, capsys):
    from model.evaluation.encodec import EncodecEmbedder

    encodec = _config(folders, output=str(tmp_path / "random"), fad_embedder="encodec", encodec_model="random")
    report = evaluate(encodec)
    clap_fad = evaluate(_config(folders, output=str(tmp_path / "clap")))["fad"]
    assert report["fad_embedding"]["model"] == "encodec" and report["fad_embedding"]["random_weights"] is True
    assert np.isfinite(report["fad"]) and report["fad"] > 0 and report["fad"] != pytest.approx(clap_fad)
    assert report["kl"]["pairs"] == 4  # tag KL and CLAP score still come from CLAP
    # The same weights saved as an HF checkpoint folder, read back by from_pretrained: the same figure.
    EncodecEmbedder("random").model.save_pretrained(tmp_path / "encodec")
    local = evaluate(encodec.model_copy(update={"encodec_model": str(tmp_path / "encodec")}))
    assert local["fad"] == pytest.approx(report["fad"], rel=1e-6) and local["fad_embedding"]["random_weights"] is False
    args = ["eval", "--generated", str(folders / "generated"), "--reference", str(folders / "reference")]
    args += ["--output", str(tmp_path / "bad"), "--fad_embedder", "encodec", "--encodec_model", str(tmp_path / "none")]
    args += [f"--clap.{key}={value}" for key, value in CLAP.items()]
    capsys.readouterr()  # transformers' progress bars of the save and load above
    assert main(args) == 2
    printed = capsys.readouterr().err
    assert "encodec_model" in printed and "no EnCodec checkpoint folder" in printed and len(printed.splitlines()) == 1
