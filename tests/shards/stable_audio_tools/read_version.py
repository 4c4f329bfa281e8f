"""Run by stable-audio-tools' own venv: its `create_dataloader_from_config`, as shipped, on the
dataset config given as JSON in argv[1]; prints a JSON summary of the first batches."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import torchaudio_stub  # noqa: E402

torchaudio_stub.install()

from stable_audio_tools.data.dataset import create_dataloader_from_config  # noqa: E402


def one(value):
    """The torch DataLoader's default collate wraps each metadata value of a batch of one."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return value.item() if hasattr(value, "item") and value.numel() == 1 else value


def main() -> None:
    request = json.loads(sys.argv[1])
    loader = create_dataloader_from_config(request["dataset_config"], **request["loader"])
    batches = []
    for batch in loader:
        reals, metadata = batch
        if reals.ndim == 4 and reals.shape[0] == 1:  # as its training wrappers unwrap it
            reals = reals[0]
        batches.append(
            {
                "shape": list(reals.shape),
                "dtype": str(reals.dtype),
                "finite": bool(reals.isfinite().all()),
                "rms": float(reals.float().pow(2).mean().sqrt()),
                "examples": [
                    {
                        "key": one(info["key"]),
                        "prompt": one(info["prompt"]),
                        "seconds_start": one(info["seconds_start"]),
                        "seconds_total": one(info["seconds_total"]),
                        "padding_mask": list(one(info["padding_mask"]).shape),
                    }
                    for info in metadata
                ],
            }
        )
        if len(batches) == request["batches"]:
            break
    print(json.dumps(batches))


if __name__ == "__main__":
    main()
