"""What a hostile or unlucky user cannot do through the command line: leak a credential into
a file or a message, loop forever on a tiny hop, lose a YAML key silently, crash on an unknown
scheme, run two writers in one folder, or invalidate finished work by changing how it runs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from audio_files import music_like, write_audio
from lease_holder import TEMPORARY, other_writer
from rich.console import Console

from curation.core.lease import LeaseHeld
from curation.segment import Windows
from labeling.vocab.generation import generation_task
from model.training.config import TrainConfig, VAETrainConfig
from orchestration.cli.main import main
from orchestration.configs.jobs import CurateJob, EncodeJob, LabelJob, ShardJob, VocabJob
from orchestration.configs.resolve import ConfigError, resolve
from orchestration.jobs.pipeline import _fingerprint, _job, _stage
from orchestration.jobs.shard import publish_version

GCSFS = importlib.util.find_spec("gcsfs") is not None
KEY, SECRET, ENDPOINT = "AKIAEXAMPLEKEY00001", "wJalrXUtnFEMI-example-secret", "http://minio.internal:9000"


def inputs_with_credentials(folder: Path) -> str:
    return (
        f"[{{path: '{folder}', storage_options: {{key: {KEY}, secret: {SECRET}, anon: true, "
        f"client_kwargs: {{endpoint_url: '{ENDPOINT}'}}}}}}]"
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trust") / "corpus"
    for seed in range(2):
        write_audio(folder / f"piece {seed}.wav", music_like(3, rate=22050, seed=seed), 22050)
    return folder


@pytest.fixture(scope="module")
def curated(corpus, tmp_path_factory) -> Path:
    """A curation whose input location carries credentials, run twice (the second resumes)."""
    output = tmp_path_factory.mktemp("curated") / "out"
    argv = ["curate", "--inputs", inputs_with_credentials(corpus), "--output", str(output)]
    argv += ["--audio.sample_rate", "22050", "--runner.workers", "1"]
    assert main(argv) == 0
    assert main(argv) == 0, "the same run is recognised on the redacted form of its storage options"
    return output


@pytest.mark.slow
def test_credentials_in_storage_options_reach_no_file(curated, tmp_path, capsys):
    config = json.loads((curated / "config.json").read_text())
    redacted = {
        "key": "<redacted>",
        "secret": "<redacted>",
        "anon": True,
        "client_kwargs": {"endpoint_url": "<redacted>"},
    }
    assert config["inputs"][0]["storage_options"] == redacted
    root = tmp_path / "versions"
    assert main(["publish", str(curated), "--root", str(root), "--version", "v1", "--runner.workers", "1"]) == 0
    lineage = json.loads((root / "v1" / "manifest.json").read_text())["lineage"]
    assert lineage["clips"]["curation_config"]["inputs"][0]["storage_options"] == redacted
    assert main(["curate", "--inputs", inputs_with_credentials(curated), "--output", "o", "--print-config"]) == 0
    printed = capsys.readouterr()
    files = [p for folder in (curated, root) for p in folder.rglob("*") if p.is_file()]
    for secret in (KEY, SECRET, ENDPOINT):
        assert secret not in printed.out + printed.err
        assert not [p for p in files if secret.encode() in p.read_bytes()], f"{secret} was written"


def test_a_printed_config_run_again_asks_for_the_hidden_values():
    """--print-config hides storage option values; that text must not reach a filesystem as a credential."""
    inputs = "[{path: raw, storage_options: {anon: false, client_kwargs: {endpoint_url: <redacted>}}}]"
    with pytest.raises(ConfigError, match=r"client_kwargs\.endpoint_url holds <redacted>.*give the real value"):
        resolve(CurateJob, None, {"inputs": inputs, "output": "o"})


def test_an_error_inside_an_option_names_that_option():
    with pytest.raises(ConfigError, match=r"inputs\.0\.license \(in --inputs\): Input should be a valid string"):
        resolve(CurateJob, None, {"inputs": "[{path: raw, license: [a]}]", "output": "o"})


@pytest.mark.parametrize(
    "location",
    [
        f"{{path: raw, storage_options: {KEY}}}",  # a key where the options' mapping belongs
        f"{{path: raw, storage_options: [{KEY}, {SECRET}]}}",
        f"{{path: raw, storage_options: {{key: {KEY}, secret: {SECRET}}}, licence: x}}",  # a typo beside them
    ],
    ids=["string", "list", "sibling"],
)
def test_a_configuration_error_never_echoes_storage_options(location):
    with pytest.raises(ConfigError, match=r"inputs\.0\.(storage_options|licence).* \(in --inputs\)") as error:
        resolve(CurateJob, None, {"inputs": f"[{location}]", "output": "o"})
    assert KEY not in str(error.value) and SECRET not in str(error.value)


def test_an_api_key_where_its_variables_name_belongs_is_refused_and_never_echoed(tmp_path):
    key = "sk-live-0123456789abcdefEXAMPLE"
    file = tmp_path / "vocab.yaml"
    file.write_text(f"output: v\nllm:\n  backend: openai\n  openai:\n    api_key_env: {key}\n")
    for config, overrides in ((None, {"output": "v", "llm.openai.api_key_env": key}), (str(file), {})):
        with pytest.raises(ConfigError, match="api_key_env.*NAME of an environment variable") as error:
            resolve(VocabJob, config, overrides)
        assert key not in str(error.value) and "sk-live" not in str(error.value)
    assert resolve(VocabJob, None, {"output": "v", "llm.openai.api_key_env": "MY_LLM_KEY_2"})


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    file = tmp_path / "job.yaml"
    file.write_text("segment:\n  window_s: 10\nunits:\n  max_files: 3\nsegment:\n  hop_s: 5\n")
    with pytest.raises(ConfigError, match=r"job.yaml: key 'segment' appears twice, on lines 1 and 5"):
        resolve(CurateJob, str(file), {"output": "o"})
    file.write_text("segment: {window_s: 10, min_clip_s: 1,\n  window_s: 5}\n")
    with pytest.raises(ConfigError, match=r"key 'window_s' appears twice, on lines 1 and 2"):
        resolve(CurateJob, str(file), {"output": "o"})
    with pytest.raises(ConfigError, match=r"--inputs: key 'path' appears twice"):
        resolve(CurateJob, None, {"inputs": "[{path: a, path: b}]", "output": "o"})


@pytest.mark.parametrize(
    "options,refusal",
    [
        ({"segment.hop_s": "0.000001"}, r"hop_s = 1e-06 s is shorter than one sample at audio.sample_rate 44100 Hz"),
        ({"segment.hop_s": "0.1"}, r"hop_s = 0.1 s would put every instant of audio into more than 100 clips"),
        ({"segment.window_s": "0.00001", "segment.min_clip_s": "0.00001"}, r"window_s = 1e-05 s is shorter than"),
        ({"segment.min_clip_s": "0.00001"}, r"min_clip_s = 1e-05 s is shorter than one sample"),
    ],
)
def test_a_segment_length_below_a_sample_or_a_runaway_hop_is_refused(options, refusal):
    with pytest.raises(ConfigError, match=rf"segment \(in --segment\.[a-z_]+.*\): Value error, {refusal}"):
        resolve(CurateJob, None, {"inputs": "[{path: raw}]", "output": "o", **options})
    assert resolve(CurateJob, None, {"inputs": "[{path: raw}]", "output": "o", "segment.hop_s": "0.3"})
    with pytest.raises(ValueError, match="at least one sample"):
        Windows(44100, 0, 100)


@pytest.mark.parametrize(
    "scheme,says",
    [
        ("s4", "unknown scheme s4://"),
        # s3fs is installed here (the s3 extra); gcsfs is not (the gcs extra is not in `all`)
        pytest.param("gs", "pip install gcsfs", marks=pytest.mark.skipif(GCSFS, reason="gcsfs is installed here")),
    ],
)
def test_an_output_scheme_nobody_can_open_is_one_line_and_exit_2(scheme, says, corpus, tmp_path, capsys):
    for argv in (
        ["curate", str(corpus), "--output", f"{scheme}://bucket/curated"],
        ["publish", str(tmp_path), "--root", f"{scheme}://bucket/versions", "--version", "v1"],
        ["versions", "verify", f"{scheme}://bucket/versions/v1"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert says in err and "Traceback" not in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_dead_ones_folder_taken_over(corpus, tmp_path):
    output = tmp_path / "out"
    command = [sys.executable, "-m", "orchestration.cli", "curate", str(corpus), "--output", str(output)]
    command += ["--audio.sample_rate", "22050", "--runner.workers", "1"]
    with other_writer(output) as holder:
        refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2, refused.stderr
        assert "is being written by soundry curate" in refused.stderr and f"process {holder.pid}" in refused.stderr
        assert (output / TEMPORARY).exists(), "the live writer's temporary is untouched"
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "taking over the lease" in resumed.stderr and not (output / TEMPORARY).exists()


@pytest.mark.slow
def test_publish_is_refused_while_another_job_writes_the_version(curated, tmp_path):
    root = tmp_path / "versions"
    job = ShardJob.model_validate({"clips": str(curated), "root": str(root), "version": "v1"})
    with other_writer(root / "v1", "soundry shard") as holder:
        with pytest.raises(LeaseHeld, match=f"soundry shard .*process {holder.pid}"):
            publish_version(job, Console(quiet=True))
        assert (root / "v1" / TEMPORARY).exists()


@pytest.mark.slow
def test_training_is_refused_on_a_run_folder_another_job_writes(tmp_path, capsys):
    run = tmp_path / "run"
    with other_writer(run, "soundry train") as holder:
        for argv in (["train", "--vae", "vae"], ["train-vae"]):
            assert main([*argv, "--output", str(run), "--data.version", str(tmp_path / "v1")]) == 2
            err = capsys.readouterr().err
            assert "is being written by soundry train (user" in err and f"process {holder.pid}" in err, err
        assert (run / TEMPORARY).exists()


def test_execution_settings_never_invalidate_a_finished_stage(tmp_path):
    def work(job, out, console):
        return {}

    report: list = []
    console = Console(quiet=True)
    stages = {
        "curated": (CurateJob, {"inputs": [{"path": "raw"}], "output": "c"}),
        "labels": (LabelJob, {"clips": "c", "vocab": "v", "output": "l", "clap": {"backend": "random"}}),
    }
    for name, (model, paths) in stages.items():
        _stage(tmp_path, name, _job(model, name, {}, runner={"workers": 1}, **paths), [], report, console, work)
        for runner, options in (
            ({"workers": 4}, {}),
            ({"name": "ray", "ray": {"address": "ray://head:10001"}}, {}),
            ({"name": "beam"}, {"model_workers": 3, "gpus_per_model_worker": 1} if model is LabelJob else {}),
        ):
            job = _job(model, name, options, runner=runner, **paths)
            _stage(tmp_path, name, job, [], report, console, work)
    assert [r["status"] for r in report] == ["ran", *["skipped (done)"] * 3] * 2


@pytest.mark.parametrize(
    "model,paths,execution,result",
    [
        (TrainConfig, {"output": "t", "vae": "vae", "data": {"version": "v"}}, {"log_every": 50}, {"max_steps": 7}),
        (VAETrainConfig, {"output": "t", "data": {"version": "v"}}, {"log_every": 50}, {"max_steps": 7}),
        (
            EncodeJob,
            {"source": "s", "vae": "vae", "root": "r", "version": "v1-latents"},
            {"model_workers": 4, "gpus_per_model_worker": 0.5, "threads": 2, "runner": {"name": "ray"}},
            {"seed": 1},
        ),
        (
            VocabJob,
            {"output": "v", "corpus": ["c"]},
            {"llm": {"backend": "openai", "model": "m", "openai": {"concurrency": 32}}, "runner": {"workers": 3}},
            {"llm": {"backend": "openai", "model": "m2"}},
        ),
    ],
    ids=["train", "train-vae", "encode", "vocab"],
)
def test_a_stage_fingerprint_ignores_how_it_runs_and_follows_what_it_makes(model, paths, execution, result):
    def fingerprint(options):
        return _fingerprint(_job(model, "stage", options, **paths), ["upstream"])

    base = {"llm": {"backend": "openai", "model": "m"}} if model is VocabJob else {}
    assert fingerprint(base) == fingerprint(execution)
    assert fingerprint(base) != fingerprint(result)


def test_how_many_requests_are_in_flight_does_not_redo_generated_units():
    def work_folder(**openai):
        llm = {"backend": "openai", "model": "m", "openai": openai}
        llm["transformers"] = {"model_workers": openai.get("concurrency", 1)}
        return generation_task(VocabJob.model_validate({"output": "v", "llm": llm}).stage_config()).work

    assert work_folder(concurrency=1) == work_folder(concurrency=32)
