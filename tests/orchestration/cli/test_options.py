import subprocess
import sys
from pathlib import Path

import pytest

from curation.config import CurationConfig
from orchestration.cli.main import main
from orchestration.configs.jobs import CurateJob
from orchestration.configs.resolve import ConfigError, resolve


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_yaml_then_command_line_overrides(tmp_path):
    config = write(
        tmp_path / "job.yaml", "inputs: [{path: a, license: CC-BY-4.0}]\noutput: out\nsegment: {window_s: 10}\n"
    )
    job = resolve(
        CurateJob, config, {"segment.hop_s": "5", "runner.name": "ray", "filter.min_lufs": "null", "output": "o2"}
    )
    assert job.segment.window_s == 10 and job.segment.hop_s == 5
    assert job.runner.name == "ray" and job.filter.min_lufs is None and job.output == "o2"
    assert job.inputs[0].license == "CC-BY-4.0"


def test_string_options_stay_strings(tmp_path):
    job = resolve(CurateJob, None, {"output": "123", "decode.ffmpeg": "1.0"}, base={"inputs": [{"path": "x"}]})
    assert job.output == "123" and job.decode.ffmpeg == "1.0"


@pytest.mark.parametrize(
    "yaml_text,overrides,expected",
    [
        ("inputs: [{path: a}]\noutput: o\nsegmnt: {window_s: 3}\n", {}, "segmnt: unknown key (in"),
        ("inputs: [{path: a}]\noutput: o\nsegmnt: {window_s: 3}\n", {}, "did you mean 'segment'"),
        ("inputs: [{path: a, licence: MIT}]\noutput: o\n", {}, "did you mean 'license'"),
        (
            "inputs: [{path: a}]\noutput: o\n",
            {"segment.window_s": "-3"},
            "segment.window_s = -3 (in --segment.window_s)",
        ),
        ("inputs: [{path: a}]\noutput: o\n", {"runner.name": "spark"}, "runner.name = 'spark'"),
        ("inputs: [{path: a}]\n", {}, "output: required"),
        (
            "inputs: [{path: a}]\noutput: o\nsegment: {window_s: 2, min_clip_s: 5}\n",
            {},
            "min_clip_s (5.0) is longer than window_s",
        ),
    ],
)
def test_mistakes_are_named(tmp_path, yaml_text, overrides, expected):
    config = write(tmp_path / "job.yaml", yaml_text)
    with pytest.raises(ConfigError) as error:
        resolve(CurateJob, config, overrides)
    assert expected in str(error.value)


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve(CurateJob, str(tmp_path / "missing.yaml"), {})
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(CurateJob, write(tmp_path / "bad.yaml", "inputs: [\n"), {})
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolve(CurateJob, write(tmp_path / "list.yaml", "- 1\n- 2\n"), {})


def test_help_describes_every_option():
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "curate", "--help"], capture_output=True, text=True, check=True
    )
    flat = " ".join(result.stdout.split())
    for name, field in CurationConfig.model_fields.items():
        nested = getattr(field.annotation, "model_fields", None)
        for key in [f"{name}.{k}" for k in nested] if nested else [name]:
            assert f"--{key}" in flat, f"--{key} missing from --help"
    assert "--runner.ray.address" in flat and "--runner.beam.pipeline_options" in flat
    assert "Clip length in seconds" in flat


def test_cli_reports_user_errors_without_traceback(tmp_path, capsys):
    code = main(["curate", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "no such file or folder" in err and "inputs[0].path" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists(), "a mistyped input left an output folder behind"
    (tmp_path / "empty").mkdir()
    assert main(["curate", str(tmp_path / "empty"), "--output", str(tmp_path / "out")]) == 2
    assert "inputs[0].path" in (err := capsys.readouterr().err) and "no files there" in err
    assert not (tmp_path / "out").exists()
    code = main(["curate", str(tmp_path), "--output", str(tmp_path / "out"), "--segment.window_s", "zero"])
    assert code == 2 and "segment.window_s" in capsys.readouterr().err
    code = main(["curate", str(tmp_path), "--output", str(tmp_path / "out2"), "--decode.ffmpeg", "/no/ffmpeg"])
    assert code == 2 and "decode.ffmpeg = '/no/ffmpeg' is not an executable" in capsys.readouterr().err


def test_an_output_that_is_a_file_is_named(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    code = main(["curate", str(tmp_path), "--output", str(blocker)])
    err = capsys.readouterr().err
    assert code == 2 and f"{blocker} is a file" in err and "Traceback" not in err
    assert blocker.read_text() == "mine"


def test_cli_rejects_unknown_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["curate", str(tmp_path), "--segment.windw_s", "3"])
    assert exit_info.value.code == 2
    assert "--segment.windw_s" in capsys.readouterr().err


def test_print_config_round_trips(tmp_path, capsys):
    assert main(["curate", "in", "--output", "o", "--segment.window_s", "12", "--print-config"]) == 0
    printed = capsys.readouterr().out
    again = resolve(CurateJob, write(tmp_path / "printed.yaml", printed), {})
    assert again.segment.window_s == 12 and again.inputs[0].path == "in"


def test_a_list_of_locations_is_one_yaml_option(tmp_path, capsys):
    assert (
        main(
            [
                "curate",
                "--inputs",
                f"[{{path: {tmp_path}, license: CC-BY-4.0}}, {{path: s3://bucket/sfx}}]",
                "--output",
                str(tmp_path / "out"),
                "--print-config",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"path: {tmp_path}" in printed and "license: CC-BY-4.0" in printed and "path: s3://bucket/sfx" in printed
    with pytest.raises(SystemExit):
        main(["curate", "--inputs.path", str(tmp_path), "--output", str(tmp_path / "out")])
