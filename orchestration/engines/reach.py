"""The guard against scattered output: a cluster engine is refused paths only the driver's machine can see."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import PurePosixPath

from curation.core.errors import UserError
from orchestration.engines.config import RunnerConfig

# Beam runners that run every worker on the driver's machine; any other (DataflowRunner,
# FlinkRunner, SparkRunner, PortableRunner...) may place workers on other machines.
LOCAL_BEAM_RUNNERS = {"directrunner", "bundlebaseddirectrunner", "switchingdirectrunner", "prismrunner"}
# Schemes whose data lives in one process or on one machine's disk.
MACHINE_LOCAL_SCHEMES = {"", "file", "local", "memory"}


class ScatteredPathError(UserError):
    """A cluster's workers would each read or write their own machine's copy of a path."""


def cluster_engine(config: RunnerConfig) -> str | None:
    """The cluster the job's engine would run on, in words; None when every worker is on this machine."""
    if config.name == "ray":
        address = config.ray.address or os.environ.get("RAY_ADDRESS")
        return f"Ray cluster {address}" if address and address != "local" else None
    if config.name == "beam":
        runner = _beam_runner(config.beam.pipeline_options)
        return None if runner.rsplit(".", 1)[-1].lower() in LOCAL_BEAM_RUNNERS else f"Beam {runner}"
    return None


def refuse_scattered_paths(
    config: RunnerConfig, paths: Iterable[str | None], worker_files: Iterable[str | None] = ()
) -> None:
    """Raise before any work when the engine is a cluster and a path is one machine's own
    (a local path, file:// or memory://) and not declared shared with runner.shared_paths.

    `paths`: data the workers read or write, which may live in an object store. `worker_files`:
    local files and folders the workers open by path (model weights, tokenizers): an object-store
    URL is no way out for those, only the same path on every node. Paths only this process reads
    are passed in neither list: a cluster's workers never see them, so one machine's own is fine.

    A Beam cluster's workers also write every pipeline's results under --temp_location for this
    process to read (beam_runner.py): without one they would go to each worker's own disk."""
    engine = cluster_engine(config)
    if engine is None:
        return
    paths = list(paths)
    if config.name == "beam":
        temp_location = _option(config.beam.pipeline_options, "temp_location")
        if not temp_location:
            raise ScatteredPathError(
                f"the engine is the {engine}, whose workers run on other machines and hand their results back through "
                "files: add --temp_location=s3://... or gs://... (a folder every worker and this machine reach) to "
                "runner.beam.pipeline_options"
            )
        paths.append(temp_location)
    for path in paths:
        if path and _machine_local(path) and not _under_shared(path, config.shared_paths):
            raise ScatteredPathError(
                f"{path} is seen by this machine only, but the engine is the {engine}, whose workers run on other "
                "machines; use an object-store URL (s3://, gs://, az://...), or declare the path shared "
                "(an NFS/Lustre mount) with runner.shared_paths: true or a list of shared folders"
            )
    for path in worker_files:
        if path and _machine_local(path) and not _under_shared(path, config.shared_paths):
            raise ScatteredPathError(
                f"{path} is opened by the workers of the {engine}, on other machines, but is seen by this machine "
                "only; put it at the same path on every node (a shared mount, or the workers' container image) "
                "and declare that folder with runner.shared_paths"
            )


def _beam_runner(options: list[str]) -> str:
    return _option(options, "runner") or "DirectRunner"  # Beam's default


def _option(options: list[str], name: str) -> str | None:
    """A pipeline option's value as Beam parses it: --name=value or --name value, the last one given."""
    value = None
    for index, option in enumerate(options):
        if option.startswith(f"--{name}="):
            value = option.split("=", 1)[1]
        elif option == f"--{name}" and index + 1 < len(options):
            value = options[index + 1]
    return value


def _scheme(path: str) -> str:
    return path.split("://", 1)[0].lower() if "://" in path else ""


def _machine_local(path: str) -> bool:
    return _scheme(path) in MACHINE_LOCAL_SCHEMES


def _under_shared(path: str, shared: bool | list[str]) -> bool:
    if _scheme(path) == "memory":
        return False  # an in-process filesystem: no mount shares it
    if isinstance(shared, bool):
        return shared
    local = _absolute(path)
    return any(local.is_relative_to(_absolute(prefix)) for prefix in shared)


def _absolute(path: str) -> PurePosixPath:
    plain = path.split("://", 1)[1] if "://" in path else path
    return PurePosixPath(os.path.abspath(os.path.expanduser(plain)))
