"""An analysis folder's summary: distributions of the facts, and accuracy against known facts.

Both read the analysis parts one at a time, so memory follows the number of distinct keys
and BPM bins, not the corpus. A truth table (Parquet or CSV) names clips by clip_id,
source_id or source_uri and gives bpm and/or key; facts of clips it does not name are not scored.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from curation.clip import clip_parts
from curation.core.errors import UserError
from curation.core.storage import filesystem, list_files, read_table
from labeling.music.facts import ANALYSIS_DIR
from labeling.music.scoring import accuracy_report, parse_key

TRUTH_KEYS = ("clip_id", "source_id", "source_uri")


class TruthTableError(UserError):
    """A truth table that cannot be read or scored; the message names the file and the column."""


def analysis_parts(folder: str) -> list[str]:
    return list_files(f"{folder.rstrip('/')}/{ANALYSIS_DIR}", ".parquet")


def distributions(folder: str) -> dict[str, Any]:
    """BPM histogram (10 BPM bins), key and mode counts, how many facts are known."""
    bpm_bins: Counter[int] = Counter()
    keys: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    progressions: Counter[str] = Counter()
    clips = tempo_known = key_known = 0
    for part in analysis_parts(folder):
        data = read_table(part, columns=["bpm", "key", "mode", "progression"]).to_pydict()
        for bpm, key, mode, progression in zip(
            data["bpm"], data["key"], data["mode"], data["progression"], strict=True
        ):
            clips += 1
            if bpm is not None:
                tempo_known += 1
                bpm_bins[int(math.floor(bpm / 10) * 10)] += 1
            if key is not None:
                key_known += 1
                keys[f"{key} {mode}"] += 1
                modes[mode] += 1
            if progression:
                progressions[progression] += 1
    return {
        "clips": clips,
        "tempo_known": tempo_known,
        "key_known": key_known,
        "bpm_histogram": {f"{low}-{low + 10}": n for low, n in sorted(bpm_bins.items())},
        "keys": dict(keys.most_common()),
        "modes": dict(sorted(modes.items())),
        "top_progressions": dict(progressions.most_common(10)),
    }


def read_truth(url: str) -> tuple[str, dict[str, tuple[float | None, str | None]]]:
    """(the id column it names clips by, id -> (bpm, key))."""
    try:
        if url.endswith(".csv"):
            fs, path = filesystem(url)
            with fs.open(path, "rb") as f:
                table = pa_csv.read_csv(f)
        else:
            table = read_table(url)
    except (OSError, pa.ArrowInvalid) as error:
        raise TruthTableError(f"truth table {url}: cannot be read ({error})") from None
    id_column = next((c for c in TRUTH_KEYS if c in table.column_names), None)
    if id_column is None or not {"bpm", "key"} & set(table.column_names):
        raise TruthTableError(
            f"truth table {url}: needs one of the columns {', '.join(TRUTH_KEYS)} and bpm and/or key "
            f"(it has {', '.join(table.column_names)})"
        )
    data = table.to_pydict()
    ids = [str(i) for i in data[id_column]]
    bpms = data.get("bpm", [None] * len(ids))
    # An empty CSV cell reads as an empty string: no known key, like a null.
    keys = [str(k).strip() or None if k is not None else None for k in data.get("key", [None] * len(ids))]
    for row, key in enumerate(keys):
        if key is not None:
            try:
                parse_key(str(key))
            except ValueError as error:
                raise TruthTableError(f"truth table {url}, row {row + 1}, column key: {error}") from None
    return id_column, {i: (float(b) if b is not None else None, k) for i, b, k in zip(ids, bpms, keys, strict=True)}


def accuracy(folder: str, clips_root: str, truth_url: str) -> dict[str, Any]:
    """The analysis scored against a truth table, over the clips it names."""
    id_column, truth = read_truth(truth_url)
    clip_to_id: dict[str, str] = {}
    if id_column != "clip_id":
        for part in clip_parts(clips_root):
            data = read_table(part, columns=["clip_id", id_column]).to_pydict()
            clip_to_id.update(zip(data["clip_id"], data[id_column], strict=True))
    pairs = []
    for part in analysis_parts(folder):
        data = read_table(part, columns=["clip_id", "bpm", "key", "mode"]).to_pydict()
        for clip_id, bpm, key, mode in zip(data["clip_id"], data["bpm"], data["key"], data["mode"], strict=True):
            known = truth.get(clip_to_id.get(clip_id, clip_id))
            if known is not None:
                pairs.append((bpm, f"{key} {mode}" if key else None, known[0], known[1]))
    if not pairs:
        raise TruthTableError(f"truth table {truth_url}: names none of the analysed clips (by {id_column})")
    return {"truth": truth_url, "by": id_column, **accuracy_report(pairs)}
