"""The streaming loader: node and worker splitting, seeded order, exact resume, resampling,
crop timing, channels and rate, prompts, latents, and corrupt data skipped and counted."""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from shards.config import ShardConfig
from shards.loader.config import LoaderConfig, PromptWeights
from shards.loader.loader import LoaderError, make_loader
from shards.manifest import VersionError
from shards.sample import members, sample_json
from shards.versions import verify_version

RATE = 8000  # the synthetic clip table's rate (conftest.make_curated)


@pytest.fixture(scope="module")
def version(tmp_path_factory, curated, shard_inputs) -> str:
    """24 clips of 1 s in 8 train shards of 3."""
    root = tmp_path_factory.mktemp("reader") / "versions"
    shard_inputs.publish_inline(
        ShardConfig(
            clips=curated.folder,
            root=str(root),
            version="v1",
            splits={"fractions": {"train": 1.0}},
            shards={"min_shards": 8},
        )
    )
    return str(root / "v1")


def config(**overrides) -> LoaderConfig:
    values = {"batch_size": 2, "num_workers": 0, "sample_size": RATE // 2, "shuffle_buffer": 4, "drop_last": False}
    return LoaderConfig(**{**values, **overrides})


def keys_of(loader) -> list[str]:
    return [key for batch in loader for key in batch["key"]]


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_two_nodes_times_two_workers_read_every_sample_once(version, curated, kind):
    settings = config(num_workers=2, worker_kind=kind)
    per_rank = [keys_of(make_loader(version, settings, rank=rank, world_size=2, seed=5)) for rank in (0, 1)]
    assert all(per_rank), "every rank gets data"
    everything = per_rank[0] + per_rank[1]
    assert len(everything) == len(set(everything)), "a sample was repeated"
    assert set(everything) == set(curated.rows), "a sample was missed"


def test_order_is_seeded_by_seed_rank_and_epoch(version):
    def order(seed=1, epoch=0, rank=0, kind="thread"):
        settings = config(num_workers=2, worker_kind=kind)
        return keys_of(make_loader(version, settings, rank=rank, world_size=2, seed=seed, epoch=epoch))

    assert order() == order() == order(kind="process")
    assert order() != order(epoch=1)
    assert order() != order(seed=2)
    assert set(order(rank=1)).isdisjoint(order())


def test_a_loader_runs_one_epoch_per_iteration(version, curated):
    loader = make_loader(version, config(), seed=3)
    first, second = keys_of(loader), keys_of(loader)
    assert sorted(first) == sorted(second) == sorted(curated.rows)
    assert first != second and loader.epoch == 2


@pytest.mark.parametrize("workers,kind,stop_after", [(0, "thread", 3), (2, "thread", 3), (2, "process", 4)])
def test_restored_position_continues_exactly(version, workers, kind, stop_after):
    settings = config(num_workers=workers, worker_kind=kind)
    uninterrupted = [(b["key"], b["audio"]) for b in make_loader(version, settings, seed=9)]
    interrupted = make_loader(version, settings, seed=9)
    taken = []
    for batch in interrupted:
        taken.append((batch["key"], batch["audio"]))
        if len(taken) == stop_after:
            break
    assert not [t for t in threading.enumerate() if t.name.startswith("soundry-loader")], "workers left running"
    state = json.loads(json.dumps(interrupted.state_dict()))  # what a checkpoint stores
    resumed = make_loader(version, settings, seed=9)
    resumed.load_state_dict(state)
    taken += [(b["key"], b["audio"]) for b in resumed]
    assert [keys for keys, _ in taken] == [keys for keys, _ in uninterrupted]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(taken, uninterrupted, strict=True))


def test_resampled_mode_is_endless_and_restorable(version, curated):
    settings = config(resampled=True, num_workers=2, worker_kind="process")
    loader = make_loader(version, settings, seed=4)
    stream = iter(loader)
    seen = [key for _ in range(20) for key in next(stream)["key"]]
    assert len(seen) == 40 > len(curated.rows) and set(seen) <= set(curated.rows)
    state = loader.state_dict()
    after = []
    for _ in range(2):
        again = make_loader(version, settings, seed=4)
        again.load_state_dict(state)
        resumed = iter(again)
        after.append([next(resumed)["key"] for _ in range(3)])
    assert after[0] == after[1]


def test_crop_timing_and_padding(version, curated):
    clip_s = 1.0
    for batch in make_loader(version, config(sample_size=RATE // 2), seed=2):
        for i, key in enumerate(batch["key"]):
            row = curated.rows[key]
            reference = curated.pcm[key].T.astype(np.float32) / 32768  # (C, n)
            crop = batch["audio"][i].numpy()
            offsets = [
                o
                for o in range(reference.shape[1] - RATE // 2 + 1)
                if np.array_equal(reference[:, o : o + 8], crop[:, :8])
            ]
            assert len(offsets) == 1
            offset = offsets[0]
            np.testing.assert_array_equal(crop, reference[:, offset : offset + RATE // 2])
            assert batch["padding_mask"][i].all()
            assert batch["seconds_start"][i] == math.floor(row["start_s"] + offset / RATE)
            assert batch["seconds_total"][i] == row["seconds_total"]
    padded = next(iter(make_loader(version, config(sample_size=3 * RATE, random_crop=False), seed=2)))
    assert padded["audio"].shape == (2, 2, 3 * RATE)
    assert padded["padding_mask"].sum(dim=1).tolist() == [int(clip_s * RATE)] * 2
    assert not padded["audio"][:, :, RATE:].any()
    starts = [curated.rows[k]["seconds_start"] for k in padded["key"]]
    assert padded["seconds_start"].tolist() == starts


@pytest.mark.parametrize("channels,rate", [(1, None), (2, 16000), (1, 4000)])
def test_channels_and_rate(version, channels, rate):
    size = 2 * RATE
    batch = next(iter(make_loader(version, config(channels=channels, sample_rate=rate, sample_size=size), seed=1)))
    assert batch["audio"].shape == (2, channels, size) and batch["audio"].dtype == torch.float32
    real = (rate or RATE) * 1  # one second of audio at the delivered rate
    assert batch["padding_mask"].sum(dim=1).tolist() == [real, real]


@pytest.mark.parametrize(
    "weights,check",
    [
        ({"long_form": 1, "tag_chunk": 0, "structured": 0, "free_form": 0}, lambda p, r: p in r["long_form"]),
        ({"long_form": 0, "tag_chunk": 1, "structured": 0, "free_form": 0}, lambda p, r: p in r["tag_chunks"]),
        ({"long_form": 0, "tag_chunk": 0, "structured": 1, "free_form": 0}, lambda p, r: ": " in p),
        (
            {"long_form": 0, "tag_chunk": 0, "structured": 0, "free_form": 1},
            lambda p, r: ":" not in p and set(p.split(", ")) <= {v for f in r["structured"] for v in f["values"]},
        ),
    ],
)
def test_prompt_choice_and_clap(labeled_version, weights, check):
    version, _, _ = labeled_version
    records = {}
    for shard in sorted(Path(version, "shards").glob("train-*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive:
                if member.name.endswith(".json"):
                    record = json.loads(archive.extractfile(member).read())
                    records[record["key"]] = record
    loader = make_loader(version, config(prompts=PromptWeights(**weights)), seed=0)
    for batch in loader:
        assert batch["clap"].shape == (len(batch["key"]), 8)
        for key, prompt in zip(batch["key"], batch["prompt"], strict=True):
            assert prompt and check(prompt, records[key])


def test_latents_are_cropped_in_frames(tmp_path, curated):
    hop, frames, size = 256, 40, 16
    keys = sorted(curated.rows)[:4]
    latents = {
        key: np.random.default_rng(i).standard_normal((64, frames)).astype(np.float16) for i, key in enumerate(keys)
    }
    shard = tmp_path / "latents-000000.tar"
    with tarfile.open(shard, "w") as archive:
        for key in keys:
            record = sample_json(curated.rows[key], "train", None)
            for name, data in members(key, curated.flac[key], record, latent=latents[key]):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    settings = config(latents=True, latent_size=size, latent_hop=hop, batch_size=4)
    batch = next(iter(make_loader([str(shard)], settings, seed=0)))
    assert batch["latents"].shape == (4, 64, size) and "audio" not in batch
    for i, key in enumerate(batch["key"]):
        crop = batch["latents"][i].numpy()
        offset = next(
            o
            for o in range(frames - size + 1)
            if np.array_equal(latents[key][:, o : o + size].astype(np.float32), crop)
        )
        assert batch["seconds_start"][i] == math.floor(curated.rows[key]["start_s"] + offset * hop / RATE)
    long = next(iter(make_loader([str(shard)], settings.model_copy(update={"latent_size": 64}), seed=0)))
    assert long["padding_mask"].sum(dim=1).tolist() == [frames] * 4


def test_corrupt_shards_and_samples_are_skipped_counted_and_logged(version, tmp_path, caplog):
    shards = sorted(Path(version, "shards").glob("train-*.tar"))
    broken = tmp_path / "broken"
    broken.mkdir()
    for shard in shards:
        shutil.copy(shard, broken / shard.name)
    # 1. truncated in the middle of its second sample's audio
    truncated = broken / shards[0].name
    with tarfile.open(truncated) as archive:
        entries = archive.getmembers()
    second_flac = next(
        m for m in entries if m.name.endswith(".flac") and not m.name.startswith(entries[0].name.split(".")[0])
    )
    truncated.write_bytes(truncated.read_bytes()[: second_flac.offset_data + second_flac.size // 2])
    survivor = entries[0].name.split(".")[0]
    lost = second_flac.name.split(".")[0]
    unread = {m.name.split(".")[0] for m in entries} - {survivor}
    # 2. one sample whose FLAC is garbage
    garbled = broken / shards[1].name
    with tarfile.open(garbled) as archive:
        content = [(m, archive.extractfile(m).read()) for m in archive.getmembers()]
    bad_key = content[0][0].name.split(".")[0]
    with tarfile.open(garbled, "w") as archive:
        for member, data in content:
            data = b"not a flac stream" if member.name == f"{bad_key}.flac" else data
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    # 3. a shard that is not a tar, and 4. one that is not there
    (broken / "noise-000000.tar").write_bytes(np.random.default_rng(0).bytes(5000))
    urls = [str(p) for p in sorted(broken.glob("*.tar"))] + [str(broken / "missing-000000.tar")]
    all_keys = {m.name.split(".")[0] for s in shards for m in tarfile.open(s).getmembers()}
    with caplog.at_level(logging.WARNING, logger="soundry.loader"):
        loader = make_loader(urls, config(), seed=0)
        keys = keys_of(loader)
    assert set(keys) == all_keys - unread - {bad_key} and survivor in keys
    assert loader.errors == {"shards": 3, "samples": 2}
    log = caplog.text
    assert str(truncated) in log and lost in log
    assert bad_key in log and str(garbled) in log
    assert "missing-000000.tar" in log and "noise-000000.tar" in log


def test_loader_refusals(version, tmp_path):
    (tmp_path / "unpublished" / "shards").mkdir(parents=True)
    with pytest.raises(VersionError, match="not a published version"):
        make_loader(str(tmp_path / "unpublished"))
    with pytest.raises(LoaderError, match="no split 'valid'"):
        make_loader(version, config(split="valid"))
    with pytest.raises(LoaderError, match="no latent.npy"):
        make_loader(version, config(latents=True))
    state = make_loader(version, config(num_workers=2)).state_dict()
    with pytest.raises(LoaderError, match="num_workers"):
        make_loader(version, config(num_workers=0)).load_state_dict(state)


def truncate_second_sample(shard: Path) -> None:
    """Cut a tar in the middle of its second sample's audio."""
    with tarfile.open(shard) as archive:
        entries = archive.getmembers()
    first = entries[0].name.split(".")[0]
    second = next(m for m in entries if m.name.endswith(".flac") and not m.name.startswith(first))
    shard.write_bytes(shard.read_bytes()[: second.offset_data + second.size // 2])


@pytest.mark.parametrize("stop_after", [1, 3, 5])
def test_a_restored_position_does_not_count_damage_again(version, tmp_path, stop_after):
    broken = tmp_path / "broken"
    shutil.copytree(Path(version, "shards"), broken)
    truncate_second_sample(sorted(broken.glob("*.tar"))[2])
    urls = [str(p) for p in sorted(broken.glob("*.tar"))]
    settings = config(num_workers=2)
    whole = make_loader(urls, settings, seed=1)
    keys_of(whole)
    assert whole.errors == {"shards": 1, "samples": 1}
    interrupted = make_loader(urls, settings, seed=1)
    for taken, _ in enumerate(interrupted, start=1):
        if taken == stop_after:
            break
    resumed = make_loader(urls, settings, seed=1)
    resumed.load_state_dict(json.loads(json.dumps(interrupted.state_dict())))
    keys_of(resumed)
    assert resumed.errors == whole.errors


def test_a_shard_cut_between_two_samples_is_counted_as_broken(version, tmp_path, caplog):
    """tarfile reads the end of a file at a member boundary as the end of the archive: only the
    manifest's sample count tells that samples are missing."""
    copy = tmp_path / "v1"
    shutil.copytree(version, copy)
    shard = copy / "shards" / "train-000004.tar"
    with tarfile.open(shard) as archive:
        last = archive.getmembers()[-1].name.split(".")[0]
        cut = next(m for m in archive.getmembers() if m.name.startswith(last)).offset  # its header
    shard.write_bytes(shard.read_bytes()[:cut])
    with caplog.at_level(logging.WARNING, logger="soundry.loader"):
        loader = make_loader(str(copy), config(), seed=0)
        keys = keys_of(loader)
    assert len(keys) == 23 and last not in keys
    assert loader.errors == {"shards": 1, "samples": 0}
    assert str(shard) in caplog.text and "ended after 2 of its 3 samples" in caplog.text
    assert [(p.file, p.problem) for p in verify_version(str(copy))] == [("shards/train-000004.tar", "size")]


def test_seconds_start_adds_the_crop_offset_to_the_clip_start(tmp_path, shard_inputs):
    """Clips of 2.5 s (starts 0, 2.5, 5 s in their source) cropped to a quarter second anywhere:
    seconds_start = floor(clip start + crop offset), which differs from floor(clip start) for
    most crops (the other fixtures start clips on whole seconds and crop under a second)."""
    curated = shard_inputs.make_curated(tmp_path / "curated", sources=2, clips_per_source=3, seconds=2.5)
    shard_inputs.publish_inline(
        ShardConfig(
            clips=curated.folder,
            root=str(tmp_path / "versions"),
            version="v1",
            splits={"fractions": {"train": 1.0}},
            shards={"min_shards": 1},
        )
    )
    size, moved = RATE // 4, 0
    for epoch in range(3):
        loader = make_loader(str(tmp_path / "versions" / "v1"), config(sample_size=size), seed=0, epoch=epoch)
        for batch in loader:
            for i, key in enumerate(batch["key"]):
                start_s = curated.rows[key]["start_s"]
                reference = curated.pcm[key].T.astype(np.float32) / 32768
                crop = batch["audio"][i].numpy()
                (offset,) = [
                    o for o in range(reference.shape[1] - size + 1) if np.array_equal(reference[:, o : o + size], crop)
                ]
                assert batch["seconds_start"][i] == math.floor(start_s + offset / RATE)
                moved += math.floor(start_s + offset / RATE) != math.floor(start_s)
    assert moved >= 6
