"""SIGTERM (a scheduler preempting the job) asks training to checkpoint and stop.

The handler only sets a flag: the loop checks it between steps, where the state is
consistent, and all ranks agree on it (one rank's signal stops them all together).
"""

from __future__ import annotations

import signal
import threading


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
