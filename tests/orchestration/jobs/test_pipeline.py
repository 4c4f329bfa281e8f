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
