"""The one base of every mistake a user can fix: a bad option, a missing file, a refused output.

Raise a subclass with a message that names the file, field or option and says what to do;
the `soundry` command prints it on one line and exits with status 2, never a traceback.
Errors that are soundry's own bugs stay ordinary exceptions.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix; the message says which input and what to do."""
