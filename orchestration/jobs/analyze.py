"""`soundry analyze`: tempo, key and chords of every clip, as a table the label stage joins.

The clip table is cut into the label stage's units; each unit is decoded and analysed on the
engine's CPU workers and written as one part, atomically, so a killed run resumes where it
stopped. The facts depend on the audio and the analysis settings only: a new vocabulary or a
new label run reuses them as they are. summary.json (distributions, and accuracy when a truth
table is given) and manifest.json, written last, close the folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from datetime import datetime, timezone
from typing import Any

from rich.console import Console

from curation.core.extras import needs_extra
from curation.core.storage import exists, join, read_json, remove_stale_temporaries, write_json_atomic
from labeling.labels.units import plan_units
from labeling.music.summary import accuracy, distributions
from labeling.music.unit import UnitSettings, analyze_unit
from orchestration.configs.jobs import AnalyzeJob
from orchestration.configs.resolve import ConfigError
from orchestration.engines.registry import make_runner, worker_count
from orchestration.jobs.label import LabelProgress

MANIFEST = "manifest.json"
WORKER_IMPORTS = ("labeling.music.unit", "librosa", "pandas")


def analyze_clips(job: AnalyzeJob, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) an analysis job; returns the summary also written to summary.json."""
    console = console or Console(stderr=True)
    config = job.stage_config()
    # Here, before any worker starts: a worker would meet the missing package later and less clearly.
    with needs_extra("analysis", "soundry analyze", "librosa"):
        import librosa  # noqa: F401
    started = time.perf_counter()
    table, units = plan_units(config.clips, config.clips_per_unit)
    run = analysis_run(config.analysis_run_fields(), table.digest)
    _claim_output(config.output, run)
    remove_stale_temporaries(config.output)
    runner = make_runner(job.runner, WORKER_IMPORTS)
    try:
        with LabelProgress(console) as progress:
            stats = runner.map(
                functools.partial(analyze_unit, settings=UnitSettings(config.output, config.analysis)),
                units,
                progress.phase("analyze", len(units)),
            )
    finally:
        runner.close()
    analysed = [s for s in stats if not s["resumed"]]
    audio_s = sum(s["audio_s"] for s in analysed)
    summary: dict[str, Any] = {
        "output": config.output,
        "analysis_run": run,
        "runner": job.runner.name,
        "workers": worker_count(job.runner),
        "clip_table": table.folder,
        "units": len(units),
        "units_resumed": len(stats) - len(analysed),
        "facts": distributions(config.output),
        "audio_s_analysed": round(audio_s, 3),
        "decode_s": round(sum(s["decode_s"] for s in analysed), 3),
        "worker_s": round(sum(s["wall_s"] for s in analysed), 3),
    }
    if config.truth:
        summary["accuracy"] = accuracy(config.output, config.clips, config.truth)
    summary["wall_s"] = round(time.perf_counter() - started, 3)
    write_json_atomic(join(config.output, "summary.json"), summary)
    # Written last: its presence says the analysis folder is complete.
    write_json_atomic(
        join(config.output, MANIFEST),
        {
            "analysis_run": run,
            "clip_table": {"folder": table.folder, "digest": table.digest, "clips": table.clips},
            "config": config.model_dump(mode="json"),
            "files": {"analysis": "analysis/part-*.parquet", "summary": "summary.json"},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )
    return summary


def analysis_run(settings: dict[str, Any], clip_table_digest: str) -> str:
    inputs = {"analysis": settings, "clip_table": clip_table_digest}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _claim_output(output: str, run: str) -> None:
    """Refuse to mix the facts of two settings or clip tables in one folder."""
    url = join(output, "analysis_run.json")
    if exists(url):
        found = read_json(url)["analysis_run"]
        if found != run:
            raise ConfigError(
                f"output {output} holds the analysis of other settings or clips ({found}; this configuration and "
                f"these clips make {run}); choose a new output folder or delete this one"
            )
        return
    write_json_atomic(url, {"analysis_run": run})
