"""The explorer's `index.html`: the clip table (rendered here, so it reads with JavaScript off),
the card's counts and plots, and the rejects by reason. Filters, search and sorting are
explorer.js's, on data attributes of the rows."""

from __future__ import annotations

import html
import os
from collections import Counter
from typing import Any

from shards.explorer.choose import top_label

PLOT_TITLES = {
    "durations": "Clip durations",
    "loudness": "Loudness (LUFS)",
    "sources_per_split": "Sources per split",
    "top_labels": "Top labels",
    "caption_frequency": "Caption frequency, plain and balanced",
}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_page(
    manifest: dict[str, Any],
    stats: dict[str, Any],
    clips: list[dict[str, Any]],
    frequency: dict[str, int],
    plots: list[str],
    rejects: dict[str, Any],
) -> str:
    title = f"{manifest['name']} {manifest['version']}"
    totals = manifest["totals"]
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en">',
            '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)} · soundry explorer</title>",
            '<link rel="stylesheet" href="explorer.css"></head>',
            "<body>",
            '<a class="skip" href="#clips">Skip to the clips</a>',
            f"<header><h1>{esc(title)}</h1>",
            f"<p>{totals['clips']} clips, {totals['hours']:.2f} hours in {totals['shards']} shards; "
            f"this page plays {len(clips)} of them (a seeded sample per split and top label, "
            "excerpts as Ogg Opus).</p>",
            '<nav aria-label="Sections"><a href="#clips">Clips</a> <a href="#card">Counts and plots</a> '
            '<a href="#rejects">Rejects</a> <a href="../README.md">Dataset card</a></nav></header>',
            "<main>",
            _clip_section(clips, frequency),
            _card_section(manifest, stats, plots),
            _rejects_section(manifest, rejects, {clip["key"] for clip in clips}),
            "</main>",
            '<script src="explorer.js"></script>',
            "</body></html>",
            "",
        ]
    )


def _options(name: str, label: str, values: list[str]) -> str:
    options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
    return f'<label>{label} <select name="{name}"><option value="">all</option>{options}</select></label>'


def _clip_section(clips: list[dict[str, Any]], frequency: dict[str, int]) -> str:
    labels = sorted({label["text"] for clip in clips for label in clip.get("labels") or []})
    tags = sorted({v for clip in clips for field in clip.get("structured") or [] for v in field["values"]})
    form = (
        '<form id="filters" class="filters" hidden role="search" aria-label="Filter the clips">'
        + _options("split", "Split", sorted({c["split"] for c in clips}))
        + _options("label", "Label or tag", sorted(set(labels) | set(tags)))
        + _options("source", "Source", sorted({c["source_name"] or "" for c in clips}))
        + _options("license", "License", sorted({c["license"] or "unknown" for c in clips}))
        + '<label>Search prompts <input type="search" name="q" autocomplete="off"></label>'
        + '<output id="shown" aria-live="polite"></output></form>'
    )
    head = (
        "<thead><tr>"
        '<th scope="col">Audio</th><th scope="col">Prompt</th>'
        '<th scope="col" data-sort="score">Labels (score, clips in top-K)</th>'
        '<th scope="col" data-sort="lufs">Quality</th>'
        '<th scope="col" data-sort="duration">Duration</th>'
        '<th scope="col">Split</th><th scope="col">Source</th><th scope="col">License</th>'
        "</tr></thead>"
    )
    rows = "\n".join(_clip_row(clip, frequency) for clip in clips)
    return (
        '<section id="clips" aria-labelledby="clips-title"><h2 id="clips-title">Clips</h2>'
        + form
        + '<div class="scroll"><table id="clip-table"><caption>A seeded sample of the version\'s clips; '
        "each player loads its excerpt only when played.</caption>"
        + head
        + f"<tbody>\n{rows}\n</tbody></table></div></section>"
    )


def _clip_row(clip: dict[str, Any], frequency: dict[str, int]) -> str:
    labels = sorted(clip.get("labels") or [], key=lambda label: -label["score"])
    tags = [v for field in clip.get("structured") or [] for v in field["values"]]
    prompts = clip.get("prompt_candidates") or []
    names = {label["text"] for label in labels} | set(tags)
    top_score = labels[0]["score"] if labels else 0.0
    searchable = " ".join([clip.get("text") or "", *prompts]).lower()
    data = {
        "split": clip["split"],
        "labels": "|" + "|".join(sorted(names)) + "|",
        "source": clip["source_name"] or "",
        "license": clip["license"] or "unknown",
        "score": f"{top_score:.4f}",
        "lufs": "" if clip["lufs"] is None else f"{clip['lufs']:.2f}",
        "duration": f"{clip['duration_s']:.3f}",
        "text": searchable,
    }
    attributes = " ".join(f'data-{name}="{esc(value)}"' for name, value in data.items())
    label_items = "".join(
        f'<li>{esc(label["text"])} <span class="score">{label["score"]:.2f}</span>'
        + (f' <span class="freq">{frequency[label["caption_id"]]}</span>' if label["caption_id"] in frequency else "")
        + (f' <span class="aspect">{esc(label["aspect"])}</span>' if label.get("aspect") else "")
        + "</li>"
        for label in labels
    )
    candidates = "".join(f"<li>{esc(p)}</li>" for p in prompts)
    prompt = f"<p>{esc(clip.get('text'))}</p>" + (
        f"<details><summary>{len(prompts)} prompt candidates</summary><ul>{candidates}</ul></details>"
        if prompts
        else ""
    )
    quality = (
        f"{_number(clip['lufs'], 'LUFS')}<br>peak {_number(clip['peak_dbfs'], 'dBFS')}<br>"
        f"silence {_number(clip['silence_ratio'], '', 2)}<br>bandwidth {_number(clip['bandwidth_hz'], 'Hz', 0)}"
    )
    where = os.path.basename(clip["source_uri"].rstrip("/"))
    facts = ", ".join(esc(clip[name]) for name in ("title", "artist", "genre") if clip.get(name))
    source = (
        f'{esc(clip["source_name"] or "")}<br><span title="{esc(clip["source_uri"])}">{esc(where)}</span> '
        f"at {clip['start_s']:.1f} s" + (f"<br>{facts}" if facts else "")
    )
    return (
        f'<tr id="clip-{esc(clip["key"])}" {attributes}>'
        f'<td><audio controls preload="none" src="audio/{esc(clip["key"])}.opus" '
        f'aria-label="Play clip {esc(clip["key"])} ({esc(top_label(clip))})"></audio></td>'
        f'<td>{prompt}</td><td><ul class="labels">{label_items or "<li>(unlabeled)</li>"}</ul>'
        + (f'<p class="tags">{esc(", ".join(tags))}</p>' if tags else "")
        + f"</td><td>{quality}</td><td>{clip['duration_s']:.1f} s</td><td>{esc(clip['split'])}</td>"
        f"<td>{source}</td><td>{esc(clip['license'] or 'unknown')}</td></tr>"
    )


def _number(value: float | None, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def _table(caption: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _card_section(manifest: dict[str, Any], stats: dict[str, Any], plots: list[str]) -> str:
    splits = [
        [name, s["clips"], f"{s['hours']:.3f}", s["shards"], s.get("sources", ""), f"{s['bytes'] / 1e6:.1f}"]
        for name, s in manifest["splits"].items()
    ]
    licenses = [[name, c["clips"], f"{c['hours']:.3f}"] for name, c in stats["per_license"].items()]
    sources = [[name, c["clips"], f"{c['hours']:.3f}"] for name, c in stats["per_source"].items()]
    top = [[t["vocab"], t["text"], t["clips"]] for t in stats.get("top_labels") or []]
    frequency = [
        [c["vocab"], c["text"], c["topk_count"], c["plain_count"], c["balanced_count"]]
        for c in stats.get("caption_frequency") or []
    ]
    figures = "".join(
        f'<figure><img src="../{esc(plot)}" alt="{esc(PLOT_TITLES.get(_stem(plot), _stem(plot)))} '
        f'(the numbers are in the tables beside it)" loading="lazy"><figcaption>'
        f"{esc(PLOT_TITLES.get(_stem(plot), _stem(plot)))}</figcaption></figure>"
        for plot in plots
    )
    parts = [
        _table("Splits", ["split", "clips", "hours", "shards", "sources", "MB"], splits),
        _table("Licenses", ["license", "clips", "hours"], licenses),
        _table("Source collections", ["source", "clips", "hours"], sources),
    ]
    if top:
        parts.append(_table("Top labels", ["vocabulary", "label", "clips"], top))
    if frequency:
        parts.append(_table("Caption frequency", ["vocabulary", "caption", "top-K", "plain", "balanced"], frequency))
    return (
        '<section id="card" aria-labelledby="card-title"><h2 id="card-title">Counts and plots</h2>'
        f'<div class="tables">{"".join(parts)}</div><div class="plots">{figures}</div></section>'
    )


def _stem(plot: str) -> str:
    return os.path.splitext(os.path.basename(plot))[0]


def _rejects_section(manifest: dict[str, Any], rejects: dict[str, Any], shown: set[str]) -> str:
    excluded = manifest["licenses"]["excluded_clips"]
    parts = [
        _table(
            "Left out of this version when publishing",
            ["reason", "clips"],
            [[reason, n] for reason, n in sorted(excluded.items())] or [["none", 0]],
        )
    ]
    counts: Counter = rejects["counts"]
    if counts:
        parts.append(
            _table(
                "Rejected by curation (step, reason)",
                ["step", "reason", "files or clips"],
                [[step, reason, n] for (step, reason), n in sorted(counts.items())],
            )
        )
        head = "".join(f'<th scope="col">{h}</th>' for h in ("step", "reason", "file", "at (s)", "detail", "listen"))
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{esc(cell)}</td>"
                for cell in (
                    r["step"],
                    r["reason"],
                    os.path.basename(r["source_uri"]),
                    f"{r['start_s'] or 0:.1f}",
                    r["detail"] or "",
                )
            )
            # A duplicate's audio is its kept copy's: a link to that clip's row when the page shows it.
            + (
                f'<td><a href="#clip-{esc(r["duplicate_of"])}">the kept copy</a></td>'
                if r.get("duplicate_of") in shown
                else "<td></td>"
            )
            + "</tr>"
            for r in rejects["examples"]
        )
        parts.append(
            f"<table><caption>Examples (up to 3 per reason)</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )
    else:
        parts.append(f"<p>{esc(rejects['note'])}</p>")
    return (
        '<section id="rejects" aria-labelledby="rejects-title"><h2 id="rejects-title">Rejects</h2>'
        + "".join(parts)
        + "</section>"
    )
