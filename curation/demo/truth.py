"""The demo corpus's truth as a table: what each piece is, keyed the way curation names its source.

One row per piece: source_id (the sha256 of the file's bytes, as curation records it), the
file name, the rater caption and aspect list of demo_caption (MusicCaps' columns), and the
genre, lead instrument, tempo and key the piece was synthesized with (bpm 0 for a style with no
audible pulse: there an unknown tempo is right, labeling.music.scoring). The label stage scores
its labels against it (`soundry label --truth`); its bpm and key columns suit `soundry analyze --truth`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from curation.demo.corpus import DemoPiece, demo_caption, write_csv
from curation.demo.synth import STYLES

TRUTH_COLUMNS = ("source_id", "file_name", "caption", "aspect_list", "genre", "instrument", "bpm", "key")


def write_demo_truth(pieces: Sequence[DemoPiece], corpus: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Writes the pieces' truth as a CSV (atomically; the same corpus gives the same bytes)."""
    return write_csv(path, TRUTH_COLUMNS, (_truth_row(piece, Path(corpus)) for piece in pieces))


def _truth_row(piece: DemoPiece, corpus: Path) -> dict[str, object]:
    with open(corpus / piece.file_name, "rb") as audio:
        source_id = hashlib.file_digest(audio, "sha256").hexdigest()
    caption = demo_caption(piece)
    return {
        "source_id": source_id,
        "file_name": piece.file_name,
        "caption": caption["caption"],
        "aspect_list": caption["aspect_list"],
        "genre": piece.genre,
        "instrument": piece.instrument,
        "bpm": piece.tempo_bpm if STYLES[piece.genre].pulse else 0.0,
        "key": piece.key,
    }
