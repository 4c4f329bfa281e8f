"""The dataset card: README.md with plots (PNG), drawn from stats.json.

The card's YAML header is the Hugging Face dataset card header, so a version folder pushed
to (or loaded from) the Hub shows its splits as webdataset configs and its license.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import pyarrow as pa  # noqa: E402
import yaml  # noqa: E402

from curation.core.storage import join, write_bytes_atomic  # noqa: E402
from shards.sample import sample_schema  # noqa: E402

CARD = "README.md"
PLOTS_DIR = "card"


def write_card(version: str, manifest: dict[str, Any], stats: dict[str, Any]) -> list[str]:
    """Write the plots and README.md; return the files written, relative to the version."""
    plots = {name: draw(stats) for name, draw in _PLOTS.items()}
    written = []
    for name, png in plots.items():
        if png is not None:
            write_bytes_atomic(join(version, PLOTS_DIR, f"{name}.png"), png)
            written.append(f"{PLOTS_DIR}/{name}.png")
    write_bytes_atomic(join(version, CARD), card_text(manifest, stats, written).encode())
    return [*written, CARD]


_LATENT_NOTE = (
    " `latent.npy` is the clip's VAE latent sequence, (channels, frames) at the model's latent rate, "
    "the whole clip (the last frame covers the clip's end padded with silence)."
)


def card_text(manifest: dict[str, Any], stats: dict[str, Any], plots: list[str]) -> str:
    licenses = sorted(stats["per_license"])
    header = {
        "pretty_name": f"{manifest['name']} {manifest['version']}",
        "license": licenses[0].lower() if len(licenses) == 1 and licenses[0] != "unknown" else "other",
        "task_categories": ["text-to-audio"],
        "tags": ["audio", "music", "webdataset", "soundry"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"shards/{split}-*.tar"} for split in manifest["splits"]],
            }
        ],
        # Declared, not inferred: exact types for every sample, and `flac` kept as bytes, so
        # loading needs no audio decoder (datasets >= 4 decodes Audio with torchcodec).
        "dataset_info": {"features": hf_features(sample_schema(manifest["members"]))},
    }
    totals = manifest["totals"]
    lineage = manifest["lineage"]
    labels = lineage.get("labels")
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).strip(),
        "---",
        "",
        f"# {manifest['name']} {manifest['version']}",
        "",
        manifest.get("description") or "A dataset version published by soundry.",
        "",
        f"{totals['clips']} clips, {totals['hours']:.2f} hours, {totals['shards']} shards, "
        f"{totals['bytes'] / 1e6:.1f} MB; {manifest['audio']['sample_rate']} Hz, {manifest['audio']['channels']} "
        f"channel(s), FLAC. Published {manifest['created']}.",
        "",
        "## Splits",
        "",
        _table(
            ["split", "clips", "hours", "sources", "shards", "MB"],
            [
                [name, s["clips"], f"{s['hours']:.2f}", s["sources"], s["shards"], f"{s['bytes'] / 1e6:.1f}"]
                for name, s in manifest["splits"].items()
            ],
        ),
        "",
        "Splits are by source: all clips of one source file are in the same split.",
        "",
        "## Licenses",
        "",
        f"Allowed licenses: {', '.join(manifest['licenses']['allowed'] or ['all'])}. "
        f"Clips left out: {_reasons(manifest['licenses']['excluded_clips'])}.",
        "",
        _table(
            ["license", "clips", "hours"],
            [[n, c["clips"], f"{c['hours']:.2f}"] for n, c in stats["per_license"].items()],
        ),
        "",
        "## Sources",
        "",
        _table(
            ["collection", "clips", "hours"],
            [[n, c["clips"], f"{c['hours']:.2f}"] for n, c in stats["per_source"].items()],
        ),
        "",
    ]
    if music := stats.get("music"):
        lines += [
            "## Musical facts",
            "",
            f"Measured from the audio (`soundry analyze`) for {music['analysed']} clips: tempo known for "
            f"{music['tempo_known']}, key for {music['key_known']} (the rest: no steady beat or no clear key). Each "
            "sample's `json` holds them under `music` (bpm, bpm_confidence, beat_count, meter, key, mode, "
            "key_confidence, chords); the BPM histogram and key counts are plotted below.",
            "",
        ]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.rsplit('/', 1)[-1].removesuffix('.png')}]({p})" for p in plots] + [""]
    lines += [
        "## Sample format",
        "",
        "Each sample is keyed by its clip id and holds " + ", ".join(f"`{m}`" for m in manifest["members"]) + ": "
        "`flac` is the clip's audio as curated (not re-encoded); `json` has the timing (`start_s`, `seconds_start`, "
        "`seconds_total`), source facts, tags, quality measures, labels, prompt candidates (`long_form`, "
        "`tag_chunks`), structured fields and one caption in `text` and `prompt`; `clap.npy` is the clip's CLAP "
        "audio embedding." + (_LATENT_NOTE if "latent.npy" in manifest["members"] else "") + " A Parquet sidecar "
        "beside each tar holds its samples' metadata without the audio.",
        "",
        "## Lineage",
        "",
        f"- clip table: `{lineage['clips']['url']}` (hash {lineage['clips']['hash'][:16]}, "
        f"{lineage['clips']['clips']} clips)",
    ]
    if labels:
        clap = labels.get("clap") or {}
        vocabularies = ", ".join(f"{k} {v}" for k, v in sorted((labels.get("vocabularies") or {}).items()))
        lines += [
            f"- labels: `{labels['url']}` (label run {labels.get('label_run')}, "
            f"hash {(labels.get('hash') or '')[:16]})",
            f"- CLAP: {clap.get('backend')} {clap.get('model_id')} (checkpoint sha256 "
            f"{str(clap.get('checkpoint_sha256'))[:16]})",
            f"- vocabularies: {vocabularies or 'none recorded'}",
        ]
    else:
        lines.append("- labels: none (prompts come from the clips' tags)")
    if latents := lineage.get("latents"):
        lines.append(
            f"- latents: encoded from `{latents['source']}` by the VAE `{latents['vae']}` "
            f"(weights sha256 {latents['vae_sha256'][:16]}; {latents['mode']}, {latents['dtype']})"
        )
    lines += [
        "",
        "## Reading it",
        "",
        textwrap.dedent(f"""\
        ```python
        from shards.loader.loader import LoaderConfig, make_loader
        loader = make_loader("path/to/{manifest["version"]}", LoaderConfig(split="train", batch_size=8))
        ```

        With webdataset: `webdataset.WebDataset(urls, shardshuffle=False)`; with Hugging Face datasets:
        `load_dataset("path/to/{manifest["version"]}", split="train")` (this card declares the splits and features).
        Check the files against the manifest with `soundry versions verify <version>`.
        """),
    ]
    return "\n".join(lines)


def hf_features(schema: pa.Schema) -> list[dict[str, Any]]:
    """A schema in the dataset card's `dataset_info.features` notation."""
    return [{"name": field.name, **_hf_type(field.type)} for field in schema]


_HF_DTYPES = {
    pa.string(): "string",
    pa.binary(): "binary",
    pa.bool_(): "bool",
    pa.int32(): "int32",
    pa.int64(): "int64",
    pa.float32(): "float32",
    pa.float64(): "float64",
}


def _hf_type(arrow_type: pa.DataType) -> dict[str, Any]:
    if pa.types.is_struct(arrow_type):
        return {"struct": hf_features(pa.schema(list(arrow_type)))}
    if pa.types.is_list(arrow_type):
        inner = _hf_type(arrow_type.value_type)
        return {"list": inner.get("dtype") or inner.get("struct") or inner}
    return {"dtype": _HF_DTYPES[arrow_type]}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _reasons(excluded: dict[str, int]) -> str:
    return ", ".join(f"{n} ({reason})" for reason, n in excluded.items()) or "none"


def _png(figure: plt.Figure, left: float = 0.12) -> bytes:
    buffer = io.BytesIO()
    # Fixed margins: an automatic layout costs more than drawing these small figures.
    height = figure.get_figheight()
    figure.subplots_adjust(left=left, right=0.97, top=1 - 0.35 / height, bottom=0.55 / height)
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _histogram_plot(histogram: dict[str, Any], xlabel: str, title: str) -> bytes | None:
    if not histogram["counts"]:
        return None
    figure, axis = plt.subplots(figsize=(6, 3.5))
    edges = histogram["edges"]
    axis.stairs(histogram["counts"], edges, fill=True, alpha=0.8)
    axis.set(xlabel=xlabel, ylabel="clips", title=title)
    return _png(figure)


def plot_durations(stats: dict[str, Any]) -> bytes | None:
    return _histogram_plot(stats["durations_s"], "clip duration (s)", "Durations")


def plot_loudness(stats: dict[str, Any]) -> bytes | None:
    return _histogram_plot(stats["loudness_lufs"], "integrated loudness (LUFS)", "Loudness")


def plot_sources_per_split(stats: dict[str, Any]) -> bytes | None:
    splits = stats["splits"]
    if not splits:
        return None
    figure, axis = plt.subplots(figsize=(6, 3.5))
    names = list(splits)
    positions = range(len(names))
    axis.bar([p - 0.2 for p in positions], [splits[n]["sources"] for n in names], width=0.4, label="sources")
    axis.bar([p + 0.2 for p in positions], [splits[n]["clips"] for n in names], width=0.4, label="clips")
    axis.set_xticks(list(positions), names)
    axis.set(title="Sources and clips per split")
    axis.legend()
    return _png(figure)


def plot_top_labels(stats: dict[str, Any]) -> bytes | None:
    top = stats["top_labels"][:20]
    if not top:
        return None
    figure, axis = plt.subplots(figsize=(8, 0.3 * len(top) + 1.2))
    names = [textwrap.shorten(f"{t['text']} ({t['vocab']})", 48) for t in reversed(top)]
    axis.barh(names, [t["clips"] for t in reversed(top)])
    axis.set(xlabel="clips", title="Top labels")
    return _png(figure, left=min(0.6, 0.1 + 0.011 * max(len(n) for n in names)))


def plot_caption_frequency(stats: dict[str, Any]) -> bytes | None:
    """Balancing at work: the captions drawn most often without it, and how often with it."""
    rows = stats["caption_frequency"]
    if not rows:
        return None
    figure, axis = plt.subplots(figsize=(7, 3.5))
    ranks = range(1, len(rows) + 1)
    axis.plot(ranks, [r["plain_count"] or 0 for r in rows], marker="o", ms=3, label="plain draw")
    axis.plot(ranks, [r["balanced_count"] or 0 for r in rows], marker="o", ms=3, label="frequency-balanced draw")
    axis.set(
        xlabel="caption rank (by plain count)", ylabel="clips labeled", title="Caption frequency: plain vs balanced"
    )
    axis.legend()
    return _png(figure)


def plot_bpm(stats: dict[str, Any]) -> bytes | None:
    music = stats.get("music")
    return _histogram_plot(music["bpm"], "tempo (BPM)", "Tempo (measured)") if music else None


def plot_keys(stats: dict[str, Any]) -> bytes | None:
    """Key counts, major and minor in their own colours, most common first."""
    music = stats.get("music")
    if not music or not music["keys"]:
        return None
    keys = list(music["keys"].items())[::-1]
    figure, axis = plt.subplots(figsize=(6, 0.28 * len(keys) + 1.2))
    colors = ["tab:orange" if name.endswith("minor") else "tab:blue" for name, _ in keys]
    axis.barh([name for name, _ in keys], [n for _, n in keys], color=colors)
    modes = ", ".join(f"{mode} {n}" for mode, n in music["modes"].items())
    axis.set(xlabel="clips", title=f"Keys (measured; {modes})")
    return _png(figure, left=0.2)


_PLOTS = {
    "durations": plot_durations,
    "loudness": plot_loudness,
    "sources_per_split": plot_sources_per_split,
    "top_labels": plot_top_labels,
    "caption_frequency": plot_caption_frequency,
    "bpm": plot_bpm,
    "keys": plot_keys,
}
