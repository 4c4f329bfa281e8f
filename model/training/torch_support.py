"""The torch the trainers need: FSDP2's public API (torch >= 2.6), checked once with a clear message."""

from __future__ import annotations

import torch

from curation.core.errors import UserError

# torch.distributed.fsdp.fully_shard and MixedPrecisionPolicy became public in 2.6 (before: under
# torch.distributed._composable), torch.distributed.tensor (DTensor) in 2.5. pyproject.toml states the same floor.
TORCH_FLOOR = "2.6"


class TorchTooOld(UserError):
    """The installed torch lacks an API the trainers use; names the floor."""


def require_fsdp2() -> None:
    """Raise TorchTooOld, naming the installed version and the floor, when FSDP2's public API is missing."""
    try:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard  # noqa: F401
        from torch.distributed.tensor import DTensor, distribute_tensor  # noqa: F401
    except ImportError as error:
        raise TorchTooOld(
            f"soundry's trainers need torch >= {TORCH_FLOOR} (FSDP2's public API: {error}); this environment has "
            f"torch {torch.__version__}: install a newer one (pip install 'torch>={TORCH_FLOOR}', or your "
            "cluster's CUDA build of it)"
        ) from None
