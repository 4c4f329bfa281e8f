"""`soundry eval`: generated audio against reference audio in the figures text-to-audio papers report.

- FAD: Fréchet distance of the two sets' CLAP audio embeddings (and FAD∞ on request);
- KL: tag distributions (CLAP zero-shot over a tag vocabulary) of generated and reference
  clips paired by name, i.e. made for the same prompt, KL(reference || generated) per pair;
- CLAP score: cosine of each prompt's text embedding and its clip's audio embedding, for the
  generated clips and, as the ceiling, for the reference clips;
- control accuracy: measured tempo and key against what each prompt asked (model/evaluation/control.py).
The reference is a folder of audio files or a split of a published dataset version (whose
samples carry their prompts). The report holds the figures, the sample counts, the model and
the resolved config; it has no timings, so running the same evaluation again writes the same
eval.json. Beside it, per_clip.parquet holds each generated clip's own figures, tags.png and
clap_score.png the two sides' tag distributions and CLAP scores, report.md all of it for a
person; with `tensorboard`, the same figures go to a run folder's TensorBoard events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from curation.core.storage import exists, join, write_bytes_atomic, write_json_atomic, write_table_atomic
from model.evaluation.audio_folder import audio_files, embed_folder, read_mono
from model.evaluation.clap_score import clap_scores, distribution
from model.evaluation.config import EvalConfig
from model.evaluation.control import ANALYSIS_RATE, asked_facts, control_accuracy
from model.evaluation.embedding import AudioEmbedder, ClapEmbedder, EmbeddedSet
from model.evaluation.encodec import EncodecEmbedder
from model.evaluation.errors import EvaluationError
from model.evaluation.frechet import fad_infinity, fit_gaussian, frechet_distance
from model.evaluation.generate_split import generate_split, split_requests
from model.evaluation.label_shift import label_counts, label_shift
from model.evaluation.per_clip import PER_CLIP_FILE, per_clip_table
from model.evaluation.plots import CLAP_SCORE_PLOT, TAGS_PLOT, clap_score_histogram, tag_distribution_bars
from model.evaluation.report_page import REPORT_PAGE, report_markdown
from model.evaluation.tag_divergence import kl_divergence, tag_probabilities
from model.evaluation.tensorboard_log import write_tensorboard
from model.evaluation.version_split import embed_version_split, split_audio
from shards.manifest import MANIFEST

REPORT_FILE = "eval.json"


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Measures, writes `output`/eval.json and returns the same report."""
    prompts = _read_prompts(config.prompts) if config.prompts else {}
    tags, tag_source = _read_tags(config.tags)
    reference_is_version = exists(join(config.reference, MANIFEST))
    generated_is_version = exists(join(config.generated, MANIFEST))
    if config.checkpoint and generated_is_version:
        raise EvaluationError(f"generated {config.generated} is a published version: with checkpoint name a folder")
    generation = None
    if config.checkpoint:
        if not reference_is_version:
            raise EvaluationError(
                f"checkpoint needs reference to be a published dataset version (its split's prompts are what is "
                f"generated); {config.reference} is not one"
            )
        requests = split_requests(config.reference, config.reference_split, config.max_clips)
        generation = generate_split(
            config.checkpoint,
            requests,
            config.generated,
            seed=config.seed,
            steps=config.steps,
            cfg_scale=config.cfg_scale,
            device=config.generation_device,
            batch_size=config.generation_batch_size,
        )
    if (
        config.prompts
        and not generated_is_version
        and not any(p.stem in prompts for p in audio_files(config.generated, "generated"))
    ):
        raise EvaluationError(f"prompts {config.prompts}: names no file of the generated folder {config.generated}")
    embedder = ClapEmbedder(config.clap)
    if generated_is_version:
        generated = embed_version_split(
            config.generated, config.generated_split, embedder, config.clips_per_batch, config.max_clips, "generated"
        )
    else:
        generated = embed_folder(config.generated, "generated", embedder, config.clips_per_batch)
    if reference_is_version:
        reference = embed_version_split(
            config.reference, config.reference_split, embedder, config.clips_per_batch, config.max_clips
        )
    else:
        reference = embed_folder(config.reference, "reference", embedder, config.clips_per_batch)

    fad_sides, fad_embedding = (generated.vectors, reference.vectors), {}
    if config.fad_embedder == "encodec":
        fad_embedder = EncodecEmbedder(config.encodec_model, config.seed)
        fad_sides = (_embed_side(config, "generated", fad_embedder), _embed_side(config, "reference", fad_embedder))
        fad_embedding = {"fad_embedding": fad_embedder.description}
    report: dict[str, Any] = {
        "generated": {"set": generated.label, "clips": len(generated.names)},
        "reference": {"set": reference.label, "clips": len(reference.names)},
        "embedding": embedder.description,
        **fad_embedding,
        **({"generation": generation} if generation else {}),
        "fad": frechet_distance(
            fit_gaussian(fad_sides[0], generated.label), fit_gaussian(fad_sides[1], reference.label)
        ),
        "config": config.model_dump(mode="json"),
    }
    if config.fad_infinity:
        value, curve = fad_infinity(*fad_sides, points=config.fad_infinity_points, seed=config.seed)
        report["fad_infinity"] = {"value": value, "seed": config.seed, "curve": [list(p) for p in curve]}
    tag_vectors = embedder.embed_text(tags)
    kl = _tag_kl(generated, reference, tag_vectors, config.tag_temperature)
    report["kl"] = (
        {"pairs": len(kl), "temperature": config.tag_temperature, **distribution(np.array(list(kl.values())))}
        if kl
        else {"pairs": 0, "skipped": "no clip name is on both sides, so no generated clip has a reference pair"}
    )
    report["kl"]["tags"] = {"count": len(tags), "source": tag_source}
    # A reference version's prompts are the generated clips' too: the two sides pair by name.
    known = {**reference.prompts, **prompts}
    scores = {
        "generated": _clap_score(generated, {**known, **generated.prompts, **prompts}, embedder),
        "reference": _clap_score(reference, known, embedder),
    }
    if any(scores.values()):
        report["clap_score"] = {
            side: distribution(np.array(list(values.values()))) if values else None for side, values in scores.items()
        }
    asked = {name: asked_facts(known.get(name), reference.structured.get(name)) for name in generated.names}

    def clips(side: str, names: set[str]) -> Iterator[tuple[str, np.ndarray]]:
        if side == "reference" and reference_is_version:
            return split_audio(config.reference, config.reference_split, names, ANALYSIS_RATE)
        if side == "generated" and generated_is_version:
            return split_audio(config.generated, config.generated_split, names, ANALYSIS_RATE)
        folder = config.generated if side == "generated" else config.reference
        return ((p.stem, read_mono(p, ANALYSIS_RATE)) for p in audio_files(folder, side) if p.stem in names)

    report["control"] = control_accuracy(asked, clips)
    if generated_is_version and reference_is_version:
        report["label_shift"] = label_shift(
            label_counts(config.reference, config.reference_split, config.max_clips),
            label_counts(config.generated, config.generated_split, config.max_clips),
        )
    table = per_clip_table(generated.names, known, kl, scores["generated"], scores["reference"])
    write_table_atomic(join(config.output, PER_CLIP_FILE), table)
    side_scores = {side: list(values.values()) for side, values in scores.items()}
    mean_tags = {
        side: tag_probabilities(clips.vectors, tag_vectors, config.tag_temperature).mean(axis=0)
        for side, clips in (("generated", generated), ("reference", reference))
    }
    plots = {TAGS_PLOT: tag_distribution_bars(tags, mean_tags["generated"], mean_tags["reference"])}
    if any(side_scores.values()):
        plots[CLAP_SCORE_PLOT] = clap_score_histogram(side_scores)
    for name, png in plots.items():
        write_bytes_atomic(join(config.output, name), png)
    top_tags = {
        side: [(tags[i], float(p[i])) for i in np.argsort(-p, kind="stable")[:5]] for side, p in mean_tags.items()
    }
    page = report_markdown(report, top_tags, list(plots))
    write_bytes_atomic(join(config.output, REPORT_PAGE), page.encode())
    if config.tensorboard:
        write_tensorboard(config.tensorboard, report, (generation or {}).get("step", 0), side_scores, plots)
    write_json_atomic(join(config.output, REPORT_FILE), report)
    return report


def _embed_side(config: EvalConfig, side: str, embedder: AudioEmbedder) -> np.ndarray:
    """One side's vectors from another embedder than CLAP, in the same clip order."""
    location = config.generated if side == "generated" else config.reference
    if exists(join(location, MANIFEST)):
        split = config.generated_split if side == "generated" else config.reference_split
        return embed_version_split(location, split, embedder, config.clips_per_batch, config.max_clips, side).vectors
    return embed_folder(location, side, embedder, config.clips_per_batch).vectors


def _tag_kl(
    generated: EmbeddedSet, reference: EmbeddedSet, tag_vectors: np.ndarray, temperature: float
) -> dict[str, float]:
    """Generated clip name -> KL(reference || generated) of its pair's tag distributions."""
    reference_rows = {name: i for i, name in enumerate(reference.names)}
    pairs = [(i, reference_rows[name]) for i, name in enumerate(generated.names) if name in reference_rows]
    if not pairs:
        return {}
    generated_rows, paired_rows = (list(column) for column in zip(*pairs, strict=True))
    values = kl_divergence(
        tag_probabilities(reference.vectors[paired_rows], tag_vectors, temperature),
        tag_probabilities(generated.vectors[generated_rows], tag_vectors, temperature),
    )
    return {generated.names[i]: float(v) for i, v in zip(generated_rows, values, strict=True)}


def _clap_score(clips: EmbeddedSet, prompts: dict[str, str], embedder: ClapEmbedder) -> dict[str, float]:
    """Clip name -> cosine of its prompt's and its audio's embeddings, for the clips with a prompt."""
    rows = [i for i, name in enumerate(clips.names) if name in prompts]
    if not rows:
        return {}
    text = embedder.embed_text([prompts[clips.names[i]] for i in rows])
    return {clips.names[i]: float(v) for i, v in zip(rows, clap_scores(text, clips.vectors[rows]), strict=True)}


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
