"""Live progress for a curation run and the closing summary, drawn with rich."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class CurationProgress:
    """Units done, files, clips, audio hours and speed as x realtime, updated per unit."""

    def __init__(self, total_units: int, console: Console) -> None:
        self.started = time.perf_counter()
        self.files = self.clips = 0
        self.seconds = 0.0
        self._progress = Progress(
            TextColumn("[bold]curate"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("units"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("curate", total=total_units, detail="")

    def __enter__(self) -> CurationProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def unit_done(self, stats: dict[str, Any]) -> None:
        self.files += stats["files"]
        self.clips += stats["clips"]
        if not stats["resumed"]:
            self.seconds += stats["seconds_in"]
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        detail = (
            f"{self.files} files · {self.clips} clips · {self.seconds / 3600:.2f} h audio · "
            f"{self.seconds / elapsed:.0f}x realtime"
        )
        self._progress.update(self._task, advance=1, detail=detail)


def summary_table(title: str) -> Table:
    """A command's summary as a table of two columns: what (bold), then its figures."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    return table


def add_runner_row(table: Table, summary: dict[str, Any]) -> None:
    """The engine a units stage ran on, its workers, and how many of its units a resume found done."""
    table.add_row(
        "runner",
        f"{summary['runner']} ({summary['workers']} workers, {summary['units']} units, "
        f"{summary['units_resumed']} resumed)",
    )


def print_summary(summary: dict[str, Any], console: Console) -> None:
    table = summary_table(f"curation summary: {summary['output']}")
    add_runner_row(table, summary)
    table.add_row(
        "in", f"{summary['files_in']} files · {summary['hours_in']:.3f} h · {summary['bytes_in'] / 1e6:.1f} MB"
    )
    table.add_row("kept", f"{summary['clips_kept']} clips · {summary['hours_out']:.3f} h")
    for kind in ("files_rejected", "clips_rejected"):
        counts = summary[kind]
        table.add_row(kind.replace("_", " "), ", ".join(f"{r}: {n}" for r, n in counts.items()) or "none")
    table.add_row("decoders", ", ".join(f"{d}: {n}" for d, n in summary["decoders"].items()))
    table.add_row("time", f"{summary['wall_s']:.1f} s wall · {summary['x_realtime']:.0f}x realtime")
    console.print(table)
