"""The lease a job holds on the folder it writes (curation/core/lease.py), its notices on the job's console."""

from __future__ import annotations

from rich.console import Console

from curation.core.lease import OutputLease


def output_lease(url: str, command: str, console: Console) -> OutputLease:
    """`with output_lease(config.output, "soundry curate", console) as lease:` around everything the job writes."""
    return OutputLease(url, command, lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True))
