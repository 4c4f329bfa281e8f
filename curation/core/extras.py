"""Optional dependencies: a command that needs an extra that is not installed says which one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from curation.core.errors import UserError


class MissingExtra(UserError):
    """A package of an optional extra is not installed; the message names the extra to install."""


@contextlib.contextmanager
def needs_extra(extra: str, purpose: str, *packages: str) -> Iterator[None]:
    """Turn the import of a missing `packages` inside the block into a MissingExtra naming `extra`.

    Only the named packages themselves are translated: a module missing inside an installed
    package is a broken installation, and its own error says more than ours would.
    """
    try:
        yield
    except ModuleNotFoundError as error:
        if error.name not in packages:
            raise
        raise MissingExtra(
            f"{purpose} needs the {error.name} package, which is not installed: "
            f"pip install 'soundry[{extra}]' (or soundry[all])"
        ) from None
