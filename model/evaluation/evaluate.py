"""`soundry eval`: generated audio against reference audio in the figures text-to-audio papers report.

- FAD: Fréchet distance of the two folders' CLAP audio embeddings (and FAD∞ on request);
- KL: tag distributions (CLAP zero-shot over a tag vocabulary) of generated and reference
  files paired by name, i.e. made for the same prompt, KL(reference || generated) per pair;
- CLAP score: cosine of each prompt's text embedding and its file's audio embedding, for the
  generated files and, as the ceiling, for the reference files.
The report holds the figures, the sample counts, the model and the resolved config; it has no
timings, so running the same evaluation again writes the same eval.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from curation.core.storage import join, write_json_atomic
from model.evaluation.audio_folder import audio_files, embed_files
from model.evaluation.clap_score import clap_scores, distribution
from model.evaluation.config import EvalConfig
from model.evaluation.embedding import ClapEmbedder
from model.evaluation.errors import EvaluationError
from model.evaluation.frechet import fad_infinity, fit_gaussian, frechet_distance
from model.evaluation.tag_divergence import kl_divergence, tag_probabilities

REPORT_FILE = "eval.json"


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Measures, writes `output`/eval.json and returns the same report."""
    generated_files = audio_files(config.generated, "generated")
    reference_files = audio_files(config.reference, "reference")
    prompts = _read_prompts(config.prompts) if config.prompts else {}
    if config.prompts and not any(p.stem in prompts for p in generated_files):
        raise EvaluationError(f"prompts {config.prompts}: names no file of the generated folder {config.generated}")
    tags, tag_source = _read_tags(config.tags)
    embedder = ClapEmbedder(config.clap)
    generated = embed_files(generated_files, embedder, config.clips_per_batch)
    reference = embed_files(reference_files, embedder, config.clips_per_batch)

    report: dict[str, Any] = {
        "generated": {"folder": config.generated, "clips": len(generated_files)},
        "reference": {"folder": config.reference, "clips": len(reference_files)},
        "embedding": embedder.description,
        "fad": frechet_distance(
            fit_gaussian(generated, f"generated {config.generated}"),
            fit_gaussian(reference, f"reference {config.reference}"),
        ),
        "config": config.model_dump(mode="json"),
    }
    if config.fad_infinity:
        value, curve = fad_infinity(generated, reference, points=config.fad_infinity_points, seed=config.seed)
        report["fad_infinity"] = {"value": value, "seed": config.seed, "curve": [list(p) for p in curve]}
    report["kl"] = _tag_kl(generated_files, generated, reference_files, reference, embedder.embed_text(tags), config)
    report["kl"]["tags"] = {"count": len(tags), "source": tag_source}
    if prompts:
        report["clap_score"] = {
            "generated": _clap_score(generated_files, generated, prompts, embedder),
            "reference": _clap_score(reference_files, reference, prompts, embedder),
        }
    write_json_atomic(join(config.output, REPORT_FILE), report)
    return report


def _tag_kl(
    generated_files: list[Path],
    generated: np.ndarray,
    reference_files: list[Path],
    reference: np.ndarray,
    tag_vectors: np.ndarray,
    config: EvalConfig,
) -> dict[str, Any]:
    reference_rows = {p.stem: i for i, p in enumerate(reference_files)}
    pairs = [(i, reference_rows[p.stem]) for i, p in enumerate(generated_files) if p.stem in reference_rows]
    if not pairs:
        return {"pairs": 0, "skipped": "no file name is in both folders, so no generated clip has a reference pair"}
    rows, reference_rows_paired = (list(column) for column in zip(*pairs, strict=True))
    values = kl_divergence(
        tag_probabilities(reference[reference_rows_paired], tag_vectors, config.tag_temperature),
        tag_probabilities(generated[rows], tag_vectors, config.tag_temperature),
    )
    return {"pairs": len(pairs), "temperature": config.tag_temperature, **distribution(values)}


def _clap_score(
    files: list[Path], vectors: np.ndarray, prompts: dict[str, str], embedder: ClapEmbedder
) -> dict[str, Any] | None:
    rows = [i for i, p in enumerate(files) if p.stem in prompts]
    if not rows:
        return None
    text = embedder.embed_text([prompts[files[i].stem] for i in rows])
    return distribution(clap_scores(text, vectors[rows]))


def _read_prompts(path: str) -> dict[str, str]:
    try:
        prompts = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise EvaluationError(f"prompts {path}: cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise EvaluationError(f"prompts {path}: not JSON ({error})") from None
    if not isinstance(prompts, dict) or not all(isinstance(v, str) and v for v in prompts.values()):
        raise EvaluationError(f"prompts {path}: must be a JSON object of file name -> non-empty prompt text")
    return prompts


def _read_tags(path: str | None) -> tuple[list[str], str]:
    if path is None:
        from labeling.vocab.builtin_tags import builtin_tags_sha256, load_builtin_tags

        return [t.tag for t in load_builtin_tags()], f"builtin ({builtin_tags_sha256()[:12]})"
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise EvaluationError(f"tags {path}: cannot be read ({error.strerror})") from None
    tags = [line.strip() for line in lines if line.strip()]
    if len(tags) < 2:
        raise EvaluationError(f"tags {path}: a tag distribution needs at least 2 tags, one a line")
    return tags, path
