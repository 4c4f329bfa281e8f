"""The guard against scattered output: cluster engines are refused paths only one machine sees."""

import pytest

from orchestration.cli.main import main
from orchestration.configs.jobs import AnalyzeJob, CurateJob, EncodeJob, LabelJob, ShardJob, VocabJob
from orchestration.engines.reach import ScatteredPathError

RAY_CLUSTER = {"name": "ray", "ray": {"address": "10.0.0.5:6379"}}


def beam(*options):
    return {"name": "beam", "beam": {"pipeline_options": list(options)}}


def beam_cluster(*options):
    """A Beam cluster runner with the temporary folder its workers hand results back through."""
    return beam(*options, "--temp_location=gs://bucket/tmp")


def curate(inputs, output, runner):
    return CurateJob.model_validate({"inputs": [{"path": p} for p in inputs], "output": output, "runner": runner})


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.parametrize(
    ("runner", "engine"),
    [
        (RAY_CLUSTER, "Ray cluster 10.0.0.5:6379"),
        ({"name": "ray", "ray": {"address": "auto"}}, "Ray cluster auto"),
        (beam_cluster("--runner=DataflowRunner", "--project=p"), "Beam DataflowRunner"),
        (beam_cluster("--runner", "FlinkRunner"), "Beam FlinkRunner"),
        (beam_cluster("--runner=SparkRunner"), "Beam SparkRunner"),
        (beam_cluster("--runner=PortableRunner", "--job_endpoint=localhost:8099"), "Beam PortableRunner"),
    ],
)
@pytest.mark.parametrize("local", ["/data/in", "relative/in", "file:///data/in", "memory://in"])
def test_a_cluster_engine_is_refused_a_path_one_machine_sees(runner, engine, local):
    with pytest.raises(ScatteredPathError) as refused:
        curate([local], "s3://bucket/curated", runner).stage_config()
    message = str(refused.value)
    assert local in message and engine in message and "\n" not in message
    assert "object-store URL" in message and "runner.shared_paths" in message


def test_ray_address_from_the_environment_is_a_cluster(monkeypatch):
    job = curate(["s3://bucket/in"], "/data/curated", {"name": "ray"})
    assert job.stage_config().output == "/data/curated"  # a local Ray started for the job: one machine
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    with pytest.raises(ScatteredPathError, match=r"/data/curated .*Ray cluster ray://head:10001"):
        job.stage_config()


@pytest.mark.parametrize("url", ["s3://bucket/in", "gs://bucket/in", "az://container/in", "hf://datasets/x/y"])
def test_object_store_urls_pass(url):
    for runner in (RAY_CLUSTER, beam_cluster("--runner=DataflowRunner")):
        assert curate([url], "gs://bucket/curated", runner).stage_config().inputs[0].path == url


def test_declared_shared_paths_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    everything = {**RAY_CLUSTER, "shared_paths": True}
    assert curate(["/lustre/in", "file:///lustre/more"], "out", everything).stage_config().output == "out"
    mounts = {**RAY_CLUSTER, "shared_paths": ["/mnt/nfs", str(tmp_path)]}
    assert curate(["/mnt/nfs/in", "file:///mnt/nfs/x/y.wav"], "out/curated", mounts).stage_config()
    # A prefix covers whole folders only, and a relative path is taken from the working folder.
    with pytest.raises(ScatteredPathError, match="/mnt/nfs2/in"):
        curate(["/mnt/nfs2/in"], "out", mounts).stage_config()
    with pytest.raises(ScatteredPathError, match="/elsewhere"):
        curate(["/mnt/nfs/in"], "/elsewhere", mounts).stage_config()


def test_a_beam_cluster_needs_a_temp_location_every_worker_reaches():
    """Every pipeline's results come back through files under --temp_location; on a local
    folder each remote worker would write its own machine's copy and the job would read none."""
    job = {"inputs": [{"path": "s3://b/in"}], "output": "s3://b/curated"}
    flink = ["--runner=FlinkRunner", "--flink_master=host:8081"]
    with pytest.raises(ScatteredPathError, match=r"Beam FlinkRunner.*add --temp_location=s3://"):
        CurateJob.model_validate({**job, "runner": beam(*flink)}).stage_config()
    for local in ("/tmp/beam", "file:///tmp/beam"):
        with pytest.raises(ScatteredPathError, match=f"^{local} is seen by this machine only"):
            CurateJob.model_validate({**job, "runner": beam(*flink, f"--temp_location={local}")}).stage_config()
    shared = {**beam(*flink, "--temp_location", "/mnt/nfs/tmp"), "shared_paths": ["/mnt/nfs"]}
    for runner in (beam(*flink, "--temp_location=s3://b/tmp"), shared):
        assert CurateJob.model_validate({**job, "runner": runner}).stage_config()
    # Beam's local runners read their results from a folder of this machine: no option needed.
    assert CurateJob.model_validate({**job, "runner": beam("--runner=DirectRunner")}).stage_config()


def test_memory_urls_are_refused_on_a_cluster_even_when_paths_are_declared_shared():
    with pytest.raises(ScatteredPathError, match="memory://curated"):
        curate(["s3://b/in"], "memory://curated", {**RAY_CLUSTER, "shared_paths": True}).stage_config()


@pytest.mark.parametrize(
    "runner",
    [
        {"name": "local"},
        {"name": "ray"},
        {"name": "ray", "ray": {"address": "local"}},
        {"name": "beam"},
        beam("--runner=DirectRunner", "--direct_running_mode=multi_processing"),
        beam("--runner=PrismRunner"),
    ],
)
def test_engines_on_this_machine_are_never_refused(runner, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")  # only the ray engine reads it
    if runner["name"] == "ray" and "ray" not in runner:
        monkeypatch.delenv("RAY_ADDRESS")
    assert curate(["/data/in", "memory://in"], "relative/out", runner).stage_config().output == "relative/out"


def test_every_stage_checks_its_paths():
    jobs = [
        (VocabJob, {"output": "/v", "llm": {"backend": "openai", "model": "m"}}, "/v"),
        (
            LabelJob,
            {"clips": "s3://b/c", "vocab": "s3://b/v", "output": "/labels", "clap": {"backend": "random"}},
            "/labels",
        ),
        (AnalyzeJob, {"clips": "/clips", "output": "s3://b/a"}, "/clips"),
        (ShardJob, {"clips": "s3://b/c", "labels": "/labels", "root": "s3://b/v", "version": "v1"}, "/labels"),
        (EncodeJob, {"source": "s3://b/v1", "vae": "vae", "root": "/versions", "version": "v2"}, "/versions"),
    ]
    for model, settings, local in jobs:
        with pytest.raises(ScatteredPathError, match=f"^{local} is seen by this machine only"):
            model.model_validate({**settings, "runner": RAY_CLUSTER}).stage_config()
        assert model.model_validate({**settings, "runner": {**RAY_CLUSTER, "shared_paths": True}}).stage_config()


def test_vocab_with_the_template_backend_runs_in_this_process_and_is_never_refused():
    """The template backend writes every sentence in this process, whatever the engine; the
    corpus and caption files are read here with any backend."""
    local = {"output": "/v", "corpus": ["/data/curated"], "captions": [{"path": "/data/musiccaps.csv"}]}
    assert VocabJob.model_validate({**local, "runner": RAY_CLUSTER}).stage_config().output == "/v"
    llm = {"output": "s3://b/v", "corpus": ["/data/curated"], "llm": {"backend": "openai", "model": "m"}}
    assert VocabJob.model_validate({**llm, "runner": RAY_CLUSTER}).stage_config().output == "s3://b/v"
    with pytest.raises(ScatteredPathError, match="^/cache is seen by this machine only"):
        VocabJob.model_validate({**llm, "llm": {**llm["llm"], "cache": "/cache"}, "runner": RAY_CLUSTER}).stage_config()


LAION = {"backend": "laion", "checkpoint": "/models/clap.pt", "tokenizer": "/models/roberta"}


@pytest.mark.parametrize(
    ("model", "settings", "opened"),
    [
        (LabelJob, {"clap": LAION}, "/models/clap.pt"),
        (LabelJob, {"clap": {**LAION, "checkpoint": "s3://b/clap.pt"}}, "/models/roberta"),
        (LabelJob, {"clap": {"backend": "hf", "model_dir": "/models/clap-hf"}}, "/models/clap-hf"),
        (LabelJob, {"clap": {"backend": "random"}, "prompts": {"tokenizer": "/models/t5"}}, "/models/t5"),
        (VocabJob, {"output": "s3://b/v", "llm": {"backend": "transformers", "model": "/models/llm"}}, "/models/llm"),
        (
            VocabJob,
            {
                "output": "s3://b/v",
                "llm": {"backend": "openai", "model": "m"},
                "cleaning": {"clap_check": {"clap": LAION, "threshold": 0.1}},
            },
            "/models/clap.pt",
        ),
        (
            EncodeJob,
            {"source": "s3://b/v1", "vae": "/models/vae", "root": "s3://b/versions", "version": "v2"},
            "/models/vae",
        ),
    ],
)
def test_model_files_the_workers_open_must_be_at_a_shared_path(model, settings, opened):
    """Weights and tokenizers are opened by path on every model worker: an object store is no
    way out, only the same path on every node (a mount or the container image), declared."""
    if model is LabelJob:
        settings = {"clips": "s3://b/c", "vocab": "s3://b/v", "output": "s3://b/labels", **settings}
    with pytest.raises(ScatteredPathError, match=f"^{opened} is opened by the workers of the Ray cluster") as refused:
        model.model_validate({**settings, "runner": RAY_CLUSTER}).stage_config()
    assert "container image" in str(refused.value) and "runner.shared_paths" in str(refused.value)
    assert model.model_validate({**settings, "runner": {**RAY_CLUSTER, "shared_paths": ["/models"]}}).stage_config()
    assert model.model_validate({**settings, "runner": {"name": "ray"}}).stage_config()  # a local Ray


def test_the_label_cache_is_written_by_the_workers():
    settings = {"clips": "s3://b/c", "vocab": "s3://b/v", "clap": {"backend": "random"}, "runner": RAY_CLUSTER}
    with pytest.raises(ScatteredPathError, match="^/scratch/clap is seen by this machine only"):
        LabelJob.model_validate({**settings, "output": "s3://b/labels", "cache": "/scratch/clap"}).stage_config()
    # Without one it is beside the output: in the same store.
    assert (
        LabelJob.model_validate({**settings, "output": "s3://b/labels"}).stage_config().cache_root().startswith("s3://")
    )


def test_the_cli_refuses_before_any_work(tmp_path, capsys):
    out = tmp_path / "curated"
    args = ["curate", str(tmp_path), "--output", str(out), "--runner.name", "ray"]
    assert main([*args, "--runner.ray.address", "127.0.0.1:9"]) == 2
    said = capsys.readouterr().err
    assert f"{tmp_path} is seen by this machine only" in said and "Ray cluster 127.0.0.1:9" in said
    assert not out.exists()  # nothing written, no cluster reached
