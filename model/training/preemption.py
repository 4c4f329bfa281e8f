"""SIGTERM (a scheduler preempting the job, torchrun forwarding it) asks training to checkpoint and stop.

The handler only sets a flag: the loop checks it between steps, where the state is consistent,
and all ranks agree on it (one rank's signal stops them all together, at the same step).

Agreeing costs no device sync: each step every rank posts its flag to an all-reduce on a CPU
(gloo) group of its own and reads the result one step later, when it is long complete. The GPU
keeps running ahead of the host; a stop takes effect one step after the signal.
"""

from __future__ import annotations

import signal
import threading

import torch
import torch.distributed as dist

from model.training.distributed import Distributed


class StopRequest:
    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def requested(self) -> bool:
        return self._event.is_set()


class StopVote:
    """Whether any rank has asked to stop, decided the same way on every rank. Every rank calls
    `poll()` once per step and `close()` once at the end (collective)."""

    def __init__(self, stop: StopRequest, ctx: Distributed) -> None:
        self.stop, self.ctx = stop, ctx
        # Made by every rank at the same point (new_group is collective).
        self._group = dist.new_group(backend="gloo") if ctx.active else None
        self._pending: tuple[dist.Work, torch.Tensor] | None = None

    def poll(self) -> bool:
        """True on every rank from the step after the one at which any rank's flag was set."""
        if not self.ctx.active:
            return self.stop.requested()
        decided = self._collect()
        flag = torch.tensor([1 if self.stop.requested() else 0], dtype=torch.int32)
        self._pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True), flag)
        return decided

    def close(self) -> None:
        """Wait for the last vote, so no collective is left open when the process group ends."""
        self._collect()

    def _collect(self) -> bool:
        if self._pending is None:
            return False
        work, flag = self._pending
        work.wait()
        self._pending = None
        return bool(flag.item())
