"""The analysis table as the label stage reads it: a finished analysis folder of the same clips,
and the facts of one unit's clips at a time."""

from __future__ import annotations

import pyarrow.dataset as ds

from curation.core.errors import UserError
from curation.core.storage import exists, filesystem, join, read_json
from labeling.music.facts import ANALYSIS_DIR, MusicFacts

MANIFEST = "manifest.json"


class AnalysisFolderError(UserError):
    """An analysis folder that is unfinished or of other clips; names the folder and what to do."""


def analysis_run(folder: str, clip_table_digest: str) -> str:
    """The folder's analysis run, checked to be finished and of this clip table."""
    url = join(folder, MANIFEST)
    if not exists(url):
        raise AnalysisFolderError(
            f"music.analysis {folder}: no finished analysis there (no {MANIFEST}); run `soundry analyze` on the same "
            "clips with this output, or finish it by running it again"
        )
    manifest = read_json(url)
    if manifest["clip_table"]["digest"] != clip_table_digest:
        raise AnalysisFolderError(
            f"music.analysis {folder}: analyses another clip table ({manifest['clip_table']['folder']}); analyse "
            "this one"
        )
    return manifest["analysis_run"]


def read_facts(folder: str, clip_ids: list[str]) -> dict[str, MusicFacts]:
    """The facts of the given clips, reading only their rows (the analysis parts are filtered, not loaded whole)."""
    fs, path = filesystem(join(folder, ANALYSIS_DIR))
    # A dataset skips names starting with "." or "_": a killed run's temporaries are never read.
    table = ds.dataset(path, filesystem=fs, format="parquet").to_table(filter=ds.field("clip_id").isin(clip_ids))
    return {row["clip_id"]: MusicFacts.from_row(row) for row in table.to_pylist()}
