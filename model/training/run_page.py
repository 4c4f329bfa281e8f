"""A training run's page, `<run>/explore/index.html`: its demos across steps, per prompt (an audio
player beside each spectrogram), and its loss curves from metrics.jsonl as inline SVG, with the
numbers in a table beside them. Static, like a version's explorer; `soundry view RUN` writes and serves it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from curation.core.errors import UserError
from shards.explorer.page import esc

PAGE = "explore/index.html"
STEP_FOLDER = re.compile(r"step-(\d+)")


class NotARun(UserError):
    """A folder with neither metrics.jsonl nor demos/: not a `soundry train` run folder."""


def is_run(folder: str) -> bool:
    return Path(folder, "metrics.jsonl").exists() or Path(folder, "demos").is_dir()


def write_run_page(run: str) -> str:
    """Write the page (and the explorer's CSS beside it); return its path relative to the run."""
    from importlib import resources

    if not is_run(run):
        raise NotARun(f"{run} has neither metrics.jsonl nor demos/: give a `soundry train` output folder")
    root = Path(run)
    metrics = _metrics(root / "metrics.jsonl")
    steps = sorted(
        (int(m.group(1)), folder)
        for folder in (root / "demos").glob("step-*")
        if (m := STEP_FOLDER.fullmatch(folder.name))
    )
    prompts: dict[int, str] = {}
    for _, folder in steps:
        if (folder / "prompts.json").exists():
            prompts.update(enumerate(json.loads((folder / "prompts.json").read_text())))
    sections = [_prompt_section(i, prompt, steps) for i, prompt in sorted(prompts.items())]
    title = f"training run {root.resolve().name}"
    page = "\n".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<title>{esc(title)} · soundry</title><link rel="stylesheet" href="explorer.css"></head><body>',
            f"<header><h1>{esc(title)}</h1><p>{len(steps)} demo steps, {len(prompts)} prompts, "
            f"{len(metrics)} logged steps.</p></header><main>",
            '<section aria-labelledby="loss-title"><h2 id="loss-title">Loss curves</h2>',
            _curves(metrics),
            "</section>",
            '<section aria-labelledby="demos-title"><h2 id="demos-title">Demos across steps</h2>',
            *sections,
            "</section></main></body></html>",
            "",
        ]
    )
    (root / "explore").mkdir(exist_ok=True)
    css = resources.files("shards.explorer").joinpath("static", "explorer.css").read_bytes()
    (root / "explore" / "explorer.css").write_bytes(css)
    (root / PAGE).write_text(page)
    return PAGE


def _metrics(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    last: dict[int, dict[str, float]] = {}
    for row in rows:  # a resumed run logs some steps again: the last record of a step wins
        last[row["step"]] = row
    return [last[step] for step in sorted(last)]


def _curves(metrics: list[dict[str, float]]) -> str:
    names = sorted({k for row in metrics for k, v in row.items() if k != "step" and isinstance(v, (int, float))})
    if not names:
        return "<p>No metrics logged yet.</p>"
    figures = []
    for name in names:
        points = [(row["step"], row[name]) for row in metrics if isinstance(row.get(name), (int, float))]
        figures.append(f"<figure>{_svg(name, points)}<figcaption>{esc(name)}</figcaption></figure>")
    header = "".join(f'<th scope="col">{esc(n)}</th>' for n in names)
    body = "".join(
        f"<tr><td>{row['step']}</td>" + "".join(f"<td>{row[n]:.4g}</td>" if n in row else "<td></td>" for n in names)
        for row in metrics
    )
    table = (
        '<details><summary>The numbers</summary><table><thead><tr><th scope="col">step</th>'
        f"{header}</tr></thead><tbody>{body}</tbody></table></details>"
    )
    return f'<div class="plots">{"".join(figures)}</div>{table}'


def _svg(name: str, points: list[tuple[int, float]], width: int = 420, height: int = 200) -> str:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (width - 60) / ((x1 - x0) or 1)
    sy = (height - 40) / ((y1 - y0) or 1)
    line = " ".join(f"{50 + (x - x0) * sx:.1f},{height - 25 - (y - y0) * sy:.1f}" for x, y in points)
    return (
        f'<svg role="img" aria-label="{esc(name)} from step {x0} to {x1}: {y0:.4g} to {y1:.4g}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{line}"/>'
        f'<text x="2" y="14" font-size="11" fill="currentColor">{y1:.4g}</text>'
        f'<text x="2" y="{height - 25}" font-size="11" fill="currentColor">{y0:.4g}</text>'
        f'<text x="50" y="{height - 6}" font-size="11" fill="currentColor">step {x0}</text>'
        f'<text x="{width - 70}" y="{height - 6}" font-size="11" fill="currentColor">step {x1}</text></svg>'
    )


def _prompt_section(index: int, prompt: str, steps: list[tuple[int, Path]]) -> str:
    rows = []
    for step, folder in steps:
        if not (folder / f"demo-{index}.wav").exists():
            continue
        base = f"../demos/{folder.name}/demo-{index}"
        image = (
            f'<img src="{base}.png" alt="spectrogram of the demo at step {step}" loading="lazy" width="320">'
            if (folder / f"demo-{index}.png").exists()
            else ""
        )
        rows.append(
            f'<tr><th scope="row">step {step}</th><td><audio controls preload="none" src="{base}.wav" '
            f'aria-label="Play the demo at step {step}"></audio></td><td>{image}</td></tr>'
        )
    return (
        f'<h3>{esc(prompt)}</h3><table><thead><tr><th scope="col">step</th><th scope="col">audio</th>'
        f'<th scope="col">spectrogram</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
