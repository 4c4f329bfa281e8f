"""The evaluation's per-clip table: one row per generated clip, its prompt and its own figures."""

from __future__ import annotations

import pyarrow as pa

PER_CLIP_FILE = "per_clip.parquet"

SCHEMA = pa.schema(
    [
        pa.field("name", pa.string(), nullable=False),  # file name without suffix, or clip_id
        pa.field("prompt", pa.string()),  # null: no prompt known for it
        pa.field("clap_score", pa.float64()),  # its prompt against its audio
        pa.field("reference_clap_score", pa.float64()),  # the same prompt against the reference clip of its name
        pa.field("tag_kl", pa.float64()),  # KL(reference || generated) of the pair's tag distributions
    ]
)


def per_clip_table(
    names: list[str],
    prompts: dict[str, str],
    tag_kl: dict[str, float],
    clap_score: dict[str, float],
    reference_clap_score: dict[str, float],
) -> pa.Table:
    """Rows in the generated clips' order; a figure a clip has none of (no prompt, no pair) is null."""
    return pa.table(
        {
            "name": names,
            "prompt": [prompts.get(n) for n in names],
            "clap_score": [clap_score.get(n) for n in names],
            "reference_clap_score": [reference_clap_score.get(n) for n in names],
            "tag_kl": [tag_kl.get(n) for n in names],
        },
        schema=SCHEMA,
    )
