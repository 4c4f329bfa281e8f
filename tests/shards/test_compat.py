"""Other readers read a version: plain `tar`, the webdataset library with its defaults, and
Hugging Face datasets' webdataset loader (offline). stable-audio-tools' own loader reads them in
test_stable_audio_tools.py."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml


def all_tars(version: str) -> list[str]:
    return sorted(str(p) for p in Path(version, "shards").glob("*.tar"))


def test_plain_tar_lists_and_extracts(labeled_version, curated, tmp_path):
    version, manifest, _ = labeled_version
    shard = manifest["shards"][0]
    listing = subprocess.run(
        ["tar", "-tvf", str(Path(version) / shard["tar"])], capture_output=True, text=True, check=True
    )
    names = [line.split()[-1] for line in listing.stdout.splitlines()]
    assert len(names) == 3 * shard["count"]
    assert all(name.count(".") in (1, 2) and "/" not in name for name in names)
    subprocess.run(["tar", "-xf", str(Path(version) / shard["tar"]), "-C", str(tmp_path)], check=True)
    for name in names:
        key, extension = name.split(".", 1)
        if extension == "flac":
            assert (tmp_path / name).read_bytes() == curated.flac[key]
        if extension == "json":
            assert json.loads((tmp_path / name).read_text())["key"] == key


def test_webdataset_with_default_settings(labeled_version, curated):
    import webdataset

    version, manifest, _ = labeled_version
    samples = list(webdataset.WebDataset(all_tars(version), shardshuffle=False).decode())
    assert len(samples) == manifest["totals"]["clips"] == len(curated.rows)
    for sample in samples:
        assert sample["flac"] == curated.flac[sample["__key__"]]
        assert sample["json"]["key"] == sample["__key__"] and sample["json"]["text"]
        assert np.asarray(sample["clap.npy"]).shape == (8,)


def test_every_json_has_the_declared_schema(labeled_version):
    import webdataset

    from shards.sample import RECORD_SCHEMA

    version, _, _ = labeled_version
    records = [json.loads(s["json"]) for s in webdataset.WebDataset(all_tars(version), shardshuffle=False)]
    assert all(set(r) <= set(RECORD_SCHEMA.names) and "null" not in json.dumps(r) for r in records)
    table = pa.Table.from_pylist(records, schema=RECORD_SCHEMA)
    assert table.num_rows == len(records)


def test_hugging_face_datasets_reads_the_version_folder_and_the_tars(labeled_version, curated, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    version, manifest, _ = labeled_version
    # The version folder: splits and features come from the card's YAML header.
    loaded = datasets.load_dataset(version, cache_dir=str(tmp_path / "cache"))
    assert {split: len(loaded[split]) for split in loaded} == {s: v["clips"] for s, v in manifest["splits"].items()}
    row = loaded["train"][0]
    assert row["flac"] == curated.flac[row["__key__"]]
    assert row["json"]["pcm_sha256"] == curated.rows[row["__key__"]]["pcm_sha256"]
    assert len(row["clap.npy"]) == 8
    # The tars alone, with the card's features (datasets >= 4 needs torchcodec to infer Audio).
    header = yaml.safe_load((Path(version) / "README.md").read_text().split("---")[1])
    features = datasets.Features._from_yaml_list(header["dataset_info"]["features"])
    train = datasets.load_dataset(
        "webdataset",
        data_files={"train": all_tars(version)},
        split="train",
        features=features,
        cache_dir=str(tmp_path / "cache"),
    )
    assert len(train) == len(curated.rows)
    import soundfile

    audio, rate = soundfile.read(io.BytesIO(train[0]["flac"]), dtype="int16")
    assert rate == 8000 and np.array_equal(audio, curated.pcm[train[0]["__key__"]])


def test_stable_audio_tools_fields(labeled_version):
    """What its `wds` dataset type reads: an audio member named by its extension, and `json`
    whose `text` it copies to `prompt`; timing it recomputes, so start_s rides along for a
    custom metadata module."""
    import webdataset

    version, _, _ = labeled_version
    sample = next(iter(webdataset.WebDataset(all_tars(version), shardshuffle=False).decode()))
    assert "flac" in sample and sample["json"]["text"] == sample["json"]["prompt"]
    assert {"start_s", "seconds_total", "source"} <= set(sample["json"])
