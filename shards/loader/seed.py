"""A seed from stable parts (run seed, epoch, rank, worker, key), the same in every process and run."""

from __future__ import annotations

import hashlib
from typing import Any


def stable_seed(*parts: Any) -> int:
    # repr, not hash(): Python salts str hashes per process, and workers must agree.
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")
