"""A pre-encoded version's latents in stable-audio-tools' pre-encoded WebDataset layout, which its
`wds` dataset type reads with `pre_encoded: true`: `{key}.npy` (channels, frames) float32 and
`{key}.json` (the sample's json plus `padding_mask`, one 0/1 per latent frame), every latent
padded to one length so that its batches stack."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import numpy as np

from curation.core.errors import UserError
from curation.core.storage import atomic_local_file, exists, join
from shards.loader.tars import read_tar_samples
from shards.manifest import read_manifest
from shards.sample import npy_bytes
from shards.writer import add_member

LATENT = "latent.npy"


class ExportError(UserError):
    """A version that cannot be exported (no latents, no such split, a bad length)."""


def export_pre_encoded(version: str, target: str, split: str = "train", frames: int | None = None) -> dict[str, Any]:
    """Write one tar per shard of `split` under `target`; shards already there are kept (a rerun resumes)."""
    manifest = read_manifest(version)
    if LATENT not in manifest["members"]:
        raise ExportError(f"{version} carries no {LATENT}: pre-encode it first (`soundry encode {version}`)")
    shards = [shard for shard in manifest["shards"] if shard["split"] == split]
    if not shards:
        raise ExportError(f"{version} has no {split!r} shards; --split is one of {', '.join(manifest['splits'])}")
    if frames is not None and frames < 1:
        raise ExportError(f"--frames must be a positive number of latent frames, not {frames}")
    urls = [join(version, shard["tar"]) for shard in shards]
    frames = frames or max(_latent_frames(sample) for url in urls for sample in read_tar_samples(url))
    written = samples = 0
    for shard, url in zip(shards, urls, strict=True):
        out = join(target, f"{shard['name']}.tar")
        if exists(out):
            samples += shard["count"]
            continue
        with atomic_local_file(out, suffix=".tar") as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for sample in read_tar_samples(url):
                latent, mask = _fixed_length(np.load(io.BytesIO(sample[LATENT]), allow_pickle=False), frames)
                record = {**json.loads(sample["json"]), "padding_mask": mask}
                add_member(tar, f"{sample['__key__']}.npy", npy_bytes(latent))
                add_member(tar, f"{sample['__key__']}.json", json.dumps(record, ensure_ascii=False).encode())
                samples += 1
        written += 1
    return {
        "target": target,
        "split": split,
        "shards": len(shards),
        "written": written,
        "samples": samples,
        "frames": frames,
    }


def _latent_frames(sample: dict[str, Any]) -> int:
    return np.load(io.BytesIO(sample[LATENT]), allow_pickle=False).shape[-1]


def _fixed_length(latent: np.ndarray, frames: int) -> tuple[np.ndarray, list[int]]:
    """(C, frames) float32, zero-padded or cut at the end, and its mask (1 on real frames)."""
    real = min(latent.shape[1], frames)
    fixed = np.zeros((latent.shape[0], frames), dtype=np.float32)
    fixed[:, :real] = latent[:, :real]
    return fixed, [1] * real + [0] * (frames - real)
