"""The generator stages on their own: splitting covers every shard once, orders are seeded, positions skip."""

from __future__ import annotations

import random

from shards.loader.stages import (
    Replay,
    batch_samples,
    resample_shards,
    shard_list,
    shuffle_samples,
    shuffle_shards,
    skip_to,
    split_balanced,
)

URLS = [f"shard-{i:06d}.tar" for i in range(11)]


def run(stages):
    stream = None
    for stage in stages:
        stream = stage(stream)
    return list(stream)


def test_nodes_times_workers_read_every_shard_once_dealt_by_size():
    counts = {url: 1 + (7 * i) % 5 for i, url in enumerate(URLS)}

    def slice_of(rank: int, worker: int, sizes=None) -> list[str]:
        return run([shard_list(URLS), shuffle_shards(7, 0), split_balanced(sizes, rank, 2, worker, 3)])

    for sizes in (None, counts):
        read = [url for rank in range(2) for worker in range(3) for url in slice_of(rank, worker, sizes)]
        assert sorted(read) == URLS
    # Without counts every shard weighs one: plain round robin, ranks first.
    order = run([shard_list(URLS), shuffle_shards(7, 0)])
    assert slice_of(1, 2) == order[5::6]
    totals = [sum(counts[u] for u in slice_of(rank, worker, counts)) for rank in range(2) for worker in range(3)]
    assert max(totals) - min(totals) <= max(counts.values())


def test_shard_order_is_seeded_by_seed_and_epoch_only():
    order = run([shard_list(URLS), shuffle_shards(7, 0)])
    assert order == run([shard_list(URLS), shuffle_shards(7, 0)]) and sorted(order) == URLS
    assert order != run([shard_list(URLS), shuffle_shards(7, 1)]) != run([shard_list(URLS), shuffle_shards(8, 0)])


def test_resampled_shards_are_drawn_with_replacement_and_seeded():
    stream = resample_shards(1, 0, 0, 0, 0)(URLS)
    draws = [next(stream) for _ in range(50)]
    again = resample_shards(1, 0, 0, 0, 0)(URLS)
    assert draws == [next(again) for _ in range(50)] and len(set(draws)) < len(draws) and set(draws) <= set(URLS)


def test_the_shuffle_buffer_keeps_every_sample():
    samples = [{"__key__": str(i)} for i in range(30)]
    shuffled = list(shuffle_samples(8, random.Random(0))(iter(samples)))
    assert sorted(s["__key__"] for s in shuffled) == sorted(s["__key__"] for s in samples)
    assert shuffled != samples


def test_skip_to_numbers_the_samples_and_drops_those_already_handed_out():
    samples = [{"__key__": str(i)} for i in range(5)]
    replay = Replay(3)
    kept = skip_to(3, replay)(iter(samples))
    assert replay.active
    assert [(s["__key__"], s["__position__"]) for s in kept] == [("3", 4), ("4", 5)]
    assert not replay.active
    resumed = list(skip_to(10, Replay(0), counted_from=10)(iter([{"__key__": "x"}])))
    assert resumed[0]["__position__"] == 11


def test_batches_carry_their_last_position_and_drop_last_drops_the_rest():
    samples = [{"__key__": str(i), "__position__": i + 1} for i in range(5)]

    def collate(examples):
        return {"key": [e["__key__"] for e in examples]}

    batches = list(batch_samples(2, False, collate)(iter(samples)))
    assert [(b["key"], b["_last_position"]) for b in batches] == [(["0", "1"], 2), (["2", "3"], 4), (["4"], 5)]
    assert len(list(batch_samples(2, True, collate)(iter(samples)))) == 2
