"""An evaluation's figures as TensorBoard events in a run folder, beside its training losses."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from curation.core.extras import needs_extra


def eval_scalars(report: dict[str, Any]) -> dict[str, float]:
    """The headline figures of a report as `eval/...` scalar tags."""
    scalars = {"eval/fad": report["fad"]}
    if "fad_infinity" in report:
        scalars["eval/fad_infinity"] = report["fad_infinity"]["value"]
    if report["kl"]["pairs"]:
        scalars["eval/tag_kl"] = report["kl"]["mean"]
    for side, score in report.get("clap_score", {}).items():
        if score:
            scalars[f"eval/clap_score_{side}"] = score["mean"]
    for side in ("generated", "reference"):
        for name, value in (report.get("control", {}).get(side) or {}).items():
            if isinstance(value, float):
                scalars[f"eval/control_{name}_{side}"] = value
    return scalars


def write_tensorboard(
    run: str, report: dict[str, Any], step: int, clap_scores: dict[str, list[float]], plots: dict[str, bytes]
) -> None:
    """Scalars, the per-clip CLAP score histograms and the plots into `run`/tensorboard at `step`."""
    with needs_extra("train", "writing evaluation figures to TensorBoard", "tensorboard"):
        from torch.utils.tensorboard import SummaryWriter
    import matplotlib.image

    writer = SummaryWriter(str(Path(run) / "tensorboard"))
    try:
        for tag, value in eval_scalars(report).items():
            writer.add_scalar(tag, value, step)
        for side, values in clap_scores.items():
            if values:
                writer.add_histogram(f"eval/clap_score_{side}", np.asarray(values), step)
        for name, png in plots.items():
            image = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]  # (H, W, 3) in [0, 1]
            writer.add_image(f"eval/{Path(name).stem}", image, step, dataformats="HWC")
    finally:
        writer.close()
