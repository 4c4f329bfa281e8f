"""An epoch's shards dealt to ranks, then to each rank's workers, by sample count; and the steps every rank takes.

Ranks step in lockstep (each optimizer step waits for every rank's gradients), so a rank
that reads more samples per epoch than another sees its samples more often. Each epoch the
shuffled shard list is dealt out largest first, each shard to the rank holding the fewest
samples so far (ties to the lower rank); a rank's shards are dealt to its loader workers the
same way, and everyone keeps their shards in shuffled order. Shards of equal size thus go
round the ranks, then the workers, as plain round-robin splitting does. Then every rank
takes the same number of batches: the fewest any rank's workers fill; the batches past that
are dropped for the epoch. A version's manifest gives the counts; for a bare list of tars
every shard counts as one.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from curation.core.errors import UserError


class TooFewShards(UserError):
    """Fewer shards than ranks x loader workers: some would read nothing; says how many are needed."""


def worker_shards(
    shards: Sequence[str], counts: Mapping[str, int] | None, rank: int, world_size: int, worker: int, workers: int
) -> list[str]:
    """One (rank, worker)'s shards of the epoch's list."""
    return deal_shards(deal_shards(shards, counts, world_size)[rank], counts, workers)[worker]


def deal_shards(shards: Sequence[str], counts: Mapping[str, int] | None, slots: int) -> list[list[str]]:
    """Each of `slots` takers' shards, in the order given: largest first to the one holding fewest samples."""
    size = (lambda url: counts[url]) if counts is not None else (lambda url: 1)
    largest_first = sorted(range(len(shards)), key=lambda i: -size(shards[i]))  # stable: equals keep their order
    holding = [(0, s) for s in range(slots)]  # (samples so far, slot): a heap
    owner = [0] * len(shards)
    for index in largest_first:
        samples, chosen = heapq.heappop(holding)
        owner[index] = chosen
        heapq.heappush(holding, (samples + size(shards[index]), chosen))
    dealt: list[list[str]] = [[] for _ in range(slots)]
    for index, url in enumerate(shards):
        dealt[owner[index]].append(url)
    return dealt


def steps_per_epoch(
    shards: Sequence[str],
    counts: Mapping[str, int],
    world_size: int,
    workers: int,
    batch_size: int,
    drop_last: bool,
) -> int:
    """Batches every rank takes this epoch (shards in the epoch's shuffled order): the fewest
    that any rank's workers make from the samples dealt to them."""

    def batches(samples: int) -> int:
        return samples // batch_size if drop_last else -(-samples // batch_size)

    return min(
        sum(batches(sum(counts[url] for url in mine)) for mine in deal_shards(ranks, counts, workers))
        for ranks in deal_shards(shards, counts, world_size)
    )


def check_enough_shards(shards: int, world_size: int, workers: int, what: str) -> None:
    """Refuse a split that leaves some (rank, worker) without a shard: in lockstep training that
    rank would wait for the others forever, or they for it."""
    needed = world_size * workers
    if shards < needed:
        raise TooFewShards(
            f"{what} has {shards} shard(s), and {world_size} rank(s) x {workers} loader worker(s) need at least "
            f"{needed} (one per worker): publish the version again with shards.min_shards {needed} or more, "
            "or train on fewer ranks or loader workers"
        )
