"""The Ray engine: work units as Ray Data tasks, the duplicate search as a Ray Data groupby.

Joins the cluster named by RayOptions.address or RAY_ADDRESS; without one it starts a
local Ray for the job and stops it again in close(). Ray Data's own progress bars and
logs are silenced: the CLI draws the job's progress from the results streaming back.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import ray
from ray import cloudpickle
from ray.data.context import ShuffleStrategy

from curation.dedup import DUPLICATE_SCHEMA, KEY_COLUMNS, duplicates_in_group
from curation.storage import read_table
from orchestration.runner_config import RayOptions
from orchestration.runners import Item, Result


class RayRunner:
    name = "ray"

    def __init__(self, options: RayOptions, workers: int) -> None:
        self.workers = workers
        # Only a Ray this runner connected to is shut down in close(); one the caller
        # already set up in this process is reused and left running.
        self._connected = not ray.is_initialized()
        if self._connected:
            address = options.address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, logging_level=logging.WARNING)
            else:
                # A local Ray enables token auth by default; a job-private cluster on
                # this machine has no use for it and would need a token set up first.
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
                ray.init(
                    num_cpus=options.num_cpus or workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # The one shuffle here groups three short strings per clip. Ray Data's default
        # hash shuffle starts aggregator actors for every execution (about 18 s on two
        # cores); the pull-based sort shuffle runs on the already-warm task workers.
        context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        # Ray Data warns at every execution that progress bars are off; errors still show.
        logging.getLogger("ray.data").setLevel(logging.ERROR)

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item], on_result: Callable[[Result], None]) -> list[Result]:
        if not items:
            return []
        # Items travel pickled in a binary column: Arrow cannot hold arbitrary dataclasses.
        # One block per item makes every item its own task, so each result streams back
        # as soon as its unit ends instead of waiting for a batch of units.
        rows = [{"item": cloudpickle.dumps(item)} for item in items]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _apply,
            fn_args=(fn,),
            batch_size=1,
            batch_format="pyarrow",
            compute=ray.data.TaskPoolStrategy(size=self.workers),
        )
        results = []
        # Rows arrive in completion order (Ray Data does not preserve order by default).
        for row in dataset.iter_rows():
            results.append(json.loads(row["result"]))
            on_result(results[-1])
        return results

    def find_duplicates(self, parts: Sequence[str]) -> pa.Table:
        if not parts:
            return DUPLICATE_SCHEMA.empty_table()
        # Each part's key columns are read by a task of ours rather than by
        # ray.data.read_parquet: the duplicate rows must name a part by exactly the string
        # given (read_parquet's path column strips URL schemes), reading goes through the
        # same fsspec layer as every other stage, and read_parquet's threaded path
        # resolution crashes intermittently (ImportError on fsspec's HTTPFileSystem) when
        # aiohttp is not installed.
        # The sort shuffle of the groupby moves blocks x blocks pieces: a few blocks per
        # worker (several parts per read task) keep that small however many parts there are.
        blocks = min(len(parts), 4 * self.workers)
        keys = ray.data.from_items([{"part": part} for part in parts], override_num_blocks=blocks).map_batches(
            _read_keys, batch_size=None, batch_format="pyarrow"
        )
        duplicates = keys.groupby("pcm_sha256").map_groups(_group_duplicates, batch_format="pyarrow")
        batches = duplicates.iter_batches(batch_size=None, batch_format="pyarrow")
        tables = [table.select(DUPLICATE_SCHEMA.names).cast(DUPLICATE_SCHEMA) for table in batches]
        return pa.concat_tables([DUPLICATE_SCHEMA.empty_table(), *tables])

    def close(self) -> None:
        if self._connected and ray.is_initialized():
            ray.shutdown()
        self._connected = False


def _apply(batch: pa.Table, fn: Callable[[Any], Result]) -> pa.Table:
    results = [json.dumps(fn(cloudpickle.loads(item))) for item in batch.column("item").to_pylist()]
    return pa.table({"result": pa.array(results, pa.string())})


def _read_keys(batch: pa.Table) -> pa.Table:
    tables = []
    for part in batch.column("part").to_pylist():
        keys = read_table(part, columns=KEY_COLUMNS)
        tables.append(keys.append_column("part", pa.array([part] * keys.num_rows, pa.string())))
    return pa.concat_tables(tables)


def _group_duplicates(group: pa.Table) -> pa.Table:
    if group.num_rows < 2:
        return DUPLICATE_SCHEMA.empty_table()
    columns = [group.column(name).to_pylist() for name in ("clip_id", "source_uri", "part")]
    return pa.Table.from_pylist(duplicates_in_group(zip(*columns)), schema=DUPLICATE_SCHEMA)
