"""The evaluation's user errors: one line naming the folder, file or option at fault."""

from __future__ import annotations

from curation.core.errors import UserError


class EvaluationError(UserError):
    """Input `soundry eval` cannot measure: an empty folder, an unreadable file, too few clips."""
