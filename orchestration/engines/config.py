"""Which engine runs a job's work units, and its options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curation.core.strict_model import StrictModel


class RayOptions(StrictModel):
    address: str | None = Field(
        None,
        description="Ray cluster to join (ray://host:10001 or host:6379); empty: RAY_ADDRESS, else a local Ray "
        "started for the job",
    )
    num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the local Ray started when no cluster is given; empty: all"
    )


class BeamOptions(StrictModel):
    # Threads, not processes, for the local default: the heavy work (decoding, resampling,
    # filtering, FLAC) runs in C with the GIL released, and worker processes cost every
    # pipeline seconds of start-up (demo corpus: 21.3 s + 5.9 s dedup with processes,
    # 15.1 s + 0.8 s with threads).
    pipeline_options: list[str] = Field(
        default_factory=lambda: ["--runner=DirectRunner", "--direct_running_mode=multi_threading"],
        description="Apache Beam pipeline options, e.g. --runner=DataflowRunner --project=... --region=...; the "
        "default runs offline on this machine",
    )


class RunnerConfig(StrictModel):
    name: Literal["local", "ray", "beam"] = Field(
        "local", description="Engine: local (process pool), ray (Ray Data) or beam (Apache Beam)"
    )
    workers: int = Field(
        0, ge=0, description="Parallel workers (local processes, Ray tasks, Beam direct workers); 0: one per CPU core"
    )
    ray: RayOptions = Field(default_factory=RayOptions, description="Options of the ray engine")
    beam: BeamOptions = Field(default_factory=BeamOptions, description="Options of the beam engine")
    shared_paths: bool | list[str] = Field(
        False,
        description="Local paths every node of a cluster sees alike (NFS, Lustre): true for all, or a list of "
        "shared folders; other local paths are refused on a Ray cluster or a non-local Beam runner",
    )
