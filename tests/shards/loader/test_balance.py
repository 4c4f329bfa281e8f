"""Ranks see the data evenly: shards dealt by sample count, the same steps on every rank per
epoch, no sample twice; a split with fewer shards than ranks x workers is refused."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from shards.config import ShardConfig
from shards.loader.balance import deal_shards, steps_per_epoch, worker_shards
from shards.loader.config import LoaderConfig
from shards.loader.loader import TooFewShards, make_loader
from shards.loader.tars import read_tar_samples

SIZES = [1, 9, 2, 8, 3, 7, 4, 6, 5, 5, 2, 10, 1, 3, 6, 8]  # samples per shard: 80 in 16 shards
BATCH = 2


@pytest.fixture(scope="module")
def uneven(tmp_path_factory, shard_inputs) -> str:
    """A published version re-cut into shards of the uneven SIZES (tars and manifest)."""
    base = tmp_path_factory.mktemp("uneven")
    curated = shard_inputs.make_curated(base / "curated", sources=20, clips_per_source=4, seconds=0.125)
    shard_inputs.publish_inline(
        ShardConfig(
            clips=curated.folder,
            root=str(base / "versions"),
            version="v1",
            splits={"fractions": {"train": 1.0}},
            shards={"min_shards": 16},
        )
    )
    version = base / "versions" / "v1"
    manifest = json.loads((version / "manifest.json").read_text())
    samples = [s for shard in manifest["shards"] for s in read_tar_samples(str(version / shard["tar"]))]
    assert len(samples) == sum(SIZES)
    target = base / "uneven"
    (target / "shards").mkdir(parents=True)
    shards, start = [], 0
    for index, size in enumerate(SIZES):
        name = f"train-{index:06d}"
        tar = target / "shards" / f"{name}.tar"
        with tarfile.open(tar, "w") as archive:
            for sample in samples[start : start + size]:
                for extension, data in sample.items():
                    if not extension.startswith("__"):
                        info = tarfile.TarInfo(f"{sample['__key__']}.{extension}")
                        info.size = len(data)
                        archive.addfile(info, io.BytesIO(data))
        start += size
        data = tar.read_bytes()
        shards.append(
            {"name": name, "split": "train", "tar": f"shards/{name}.tar", "sidecar": f"shards/{name}.parquet"}
            | {"count": size, "bytes": len(data)}
            | {"sha256": hashlib.sha256(data).hexdigest()}
        )
    (target / "manifest.json").write_text(json.dumps({**manifest, "shards": shards}))
    return str(target)


def rank_batches(version: str, world_size: int, workers: int, epoch: int = 0) -> list[list[list[str]]]:
    """Each rank's batches of the epoch (their keys)."""
    settings = LoaderConfig(batch_size=BATCH, num_workers=workers, sample_size=256, shuffle_buffer=4)
    loaders = [make_loader(version, settings, rank, world_size, seed=3, epoch=epoch) for rank in range(world_size)]
    steps = {loader.steps_per_epoch() for loader in loaders}
    batches = [[batch["key"] for batch in loader] for loader in loaders]
    assert steps == {len(batches[0])}, "every rank knows the epoch's steps beforehand"
    return batches


@pytest.mark.parametrize("world_size,workers", [(1, 2), (2, 1), (2, 2), (3, 1), (8, 1), (8, 2)])
def test_every_rank_takes_the_same_steps_and_no_sample_twice(uneven, world_size, workers):
    for epoch in (0, 1):
        per_rank = [
            [key for batch in batches for key in batch] for batches in rank_batches(uneven, world_size, workers, epoch)
        ]
        everything = [key for keys in per_rank for key in keys]
        assert len(everything) == len(set(everything)), "a sample was read twice in an epoch"
        sizes = [len(keys) for keys in per_rank]
        # Equal steps (lockstep ranks): with drop_last every batch is full, so equal sample counts.
        assert len(set(sizes)) == 1 and min(sizes) > 0, sizes
        # Dealt by size, little is left over for equal steps: at most a partial batch per worker
        # and what the most even deal of these shards cannot even out.
        assert sum(SIZES) - len(everything) <= world_size * workers * (BATCH - 1) + 8, sizes


def test_the_deal_balances_samples_and_steps_are_the_fewest_any_rank_fills():
    urls = [f"s{i}" for i in range(len(SIZES))]
    counts = dict(zip(urls, SIZES, strict=True))
    dealt = deal_shards(urls, counts, 4)
    totals = [sum(counts[u] for u in taken) for taken in dealt]
    assert sorted(u for taken in dealt for u in taken) == sorted(urls) and max(totals) - min(totals) <= 1
    assert all(taken == [u for u in urls if u in taken] for taken in dealt), "shards keep the epoch's order"
    ranks = deal_shards(urls, counts, 2)
    workers = [[sum(counts[u] for u in w) for w in deal_shards(mine, counts, 2)] for mine in ranks]
    assert steps_per_epoch(urls, counts, 2, 2, BATCH, True) == min(sum(n // BATCH for n in w) for w in workers)
    assert deal_shards(urls, None, 4) == [urls[s::4] for s in range(4)], "without counts: round robin"
    for rank in range(2):
        for worker in range(3):
            assert worker_shards(urls, None, rank, 2, worker, 3) == urls[rank::2][worker::3]


def test_fewer_shards_than_ranks_times_workers_is_refused(uneven):
    settings = LoaderConfig(batch_size=BATCH, num_workers=2)
    with pytest.raises(TooFewShards, match=r"16 shard\(s\), and 9 rank\(s\) x 2 loader worker\(s\) need at least 18"):
        make_loader(uneven, settings, rank=0, world_size=9)
    assert "shards.min_shards 18" in str(pytest.raises(TooFewShards, make_loader, uneven, settings, 8, 9).value)
    make_loader(uneven, settings.model_copy(update={"resampled": True}), rank=8, world_size=9)  # draws never run dry


def test_a_restored_loader_stops_at_the_same_step(uneven):
    settings = LoaderConfig(batch_size=BATCH, num_workers=2, sample_size=256, shuffle_buffer=4)
    whole = [b["key"] for b in make_loader(uneven, settings, 1, 3, seed=3)]
    stopped = make_loader(uneven, settings, 1, 3, seed=3)
    taken = []
    for batch in stopped:
        taken.append(batch["key"])
        if len(taken) == len(whole):  # the epoch's last step: the checkpoint comes before the loader ends it
            break
    resumed = make_loader(uneven, settings, 1, 3, seed=3)
    resumed.load_state_dict(json.loads(json.dumps(stopped.state_dict())))
    assert taken == whole and [b["key"] for b in resumed] == []
    assert resumed.epoch == 1 and [b["key"] for b in resumed] == [
        b["key"] for b in make_loader(uneven, settings, 1, 3, seed=3, epoch=1)
    ]


def test_the_uneven_version_is_what_the_test_says(uneven):
    manifest = json.loads(Path(uneven, "manifest.json").read_text())
    assert [s["count"] for s in manifest["shards"]] == SIZES


def test_the_trainer_refuses_too_few_shards_before_it_builds_the_loader(uneven):
    from model.config import preset
    from model.training.config import DataConfig
    from model.training.data import loader_config

    data = DataConfig(version=uneven, workers=17)
    with pytest.raises(TooFewShards, match=r"split train, has 16 shard\(s\).*shards.min_shards 17"):
        loader_config(data, preset("tiny"))
