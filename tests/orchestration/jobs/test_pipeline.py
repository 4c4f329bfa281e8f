import pytest
from rich.console import Console

from model.training.config import TrainConfig
from orchestration.configs.jobs import CurateJob
from orchestration.configs.resolve import ConfigError
from orchestration.jobs.pipeline import _job, _stage


def test_a_finished_stage_is_skipped_and_a_changed_one_refused(tmp_path):
    calls = []

    def work(job, out, console):
        calls.append(out)
        return {"ok": True}

    job = _job(CurateJob, "curate", {}, inputs=[{"path": "raw"}], output=str(tmp_path / "curated"))
    report: list = []
    console = Console(quiet=True)
    first = _stage(tmp_path, "curated", job, [], report, console, work)
    again = _stage(tmp_path, "curated", job, [], report, console, work)
    assert first == again and len(calls) == 1
    assert [r["status"] for r in report] == ["ran", "skipped (done)"]
    changed = _job(
        CurateJob, "curate", {"segment": {"window_s": 10}}, inputs=[{"path": "raw"}], output=str(tmp_path / "curated")
    )
    with pytest.raises(ConfigError, match="another configuration"):
        _stage(tmp_path, "curated", changed, [], report, console, work)
    with pytest.raises(ConfigError, match="another configuration"):  # an upstream change counts too
        _stage(tmp_path, "curated", job, ["other-upstream"], report, console, work)


def test_section_options_meet_the_pipeline_paths(tmp_path):
    job = _job(
        TrainConfig,
        "train",
        {"max_steps": 7, "data": {"batch_size": 3}},
        output="o",
        vae="v",
        data={"version": "ver", "batch_size": 3},
    )
    assert job.max_steps == 7 and job.data.batch_size == 3 and job.data.version == "ver" and job.vae == "v"
    with pytest.raises(ConfigError, match="train.output: set by the pipeline"):
        _job(TrainConfig, "train", {"output": "elsewhere"}, output="o", data={"version": "ver"})
    with pytest.raises(ConfigError, match="train.max_steps"):
        _job(TrainConfig, "train", {"max_steps": -1}, output="o", data={"version": "ver"})


def test_a_stage_nothing_reads_is_made_again_when_its_config_changes(tmp_path):
    made = []

    def work(job, out, console):
        out.mkdir(parents=True, exist_ok=True)
        assert not (out / "old.txt").exists()  # the older output is gone before the stage runs again
        (out / "old.txt").write_text(job.output)
        made.append(job.segment.window_s)
        return {}

    report: list = []
    console = Console(quiet=True)
    for window in (10, 10, 20):
        job = _job(CurateJob, "eval", {"segment": {"window_s": window}}, inputs=[{"path": "r"}], output="o")
        _stage(tmp_path, "eval", job, [], report, console, work, redo_on_change=True)
    assert made == [10, 20] and [r["status"] for r in report] == ["ran", "skipped (done)", "ran"]
