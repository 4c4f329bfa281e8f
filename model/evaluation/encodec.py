"""EnCodec (transformers' `EncodecModel`) as an audio embedder for FAD: a clip is the mean over
time of its encoder's features (before quantization), one vector per clip.

Weights come from a local folder of an HF-format checkpoint (e.g. facebook/encodec_24khz saved
with save_pretrained), read with `from_pretrained(..., local_files_only=True)`: nothing is
downloaded. `random` builds a small randomly initialized model from a seed, offline, for tests
and demos; its description says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curation.core.extras import needs_extra
from model.evaluation.errors import EvaluationError

RANDOM = "random"


class EncodecEmbedder:
    def __init__(self, model: str, seed: int = 0) -> None:
        with needs_extra("label", "EnCodec embeddings (fad_embedder encodec)", "transformers"):
            import torch
            from transformers import EncodecConfig, EncodecModel

        if model == RANDOM:
            torch.manual_seed(seed)
            self.model = EncodecModel(EncodecConfig(num_filters=8, hidden_size=32, codebook_dim=32))
        else:
            if not (Path(model) / "config.json").is_file():
                raise EvaluationError(
                    f"encodec_model {model}: no EnCodec checkpoint folder (config.json and weights, e.g. "
                    "facebook/encodec_24khz saved with save_pretrained); pass its local path, or random"
                )
            self.model = EncodecModel.from_pretrained(model, local_files_only=True)
        self.model.eval()
        self.sample_rate = int(self.model.config.sampling_rate)
        self.description = {
            "model": "encodec",
            "checkpoint": model,
            "random_weights": model == RANDOM,
            "description": f"EnCodec encoder, features pooled over time ({model})",
        }

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Each clip alone (no padding enters another's mean): (len(clips), hidden_size) float32."""
        import torch

        vectors = []
        with torch.inference_mode():
            for clip in clips:
                features = self.model.encoder(torch.from_numpy(np.asarray(clip, np.float32))[None, None])  # (1, D, L)
                vectors.append(features.mean(dim=-1)[0].numpy())
        return np.stack(vectors).astype(np.float32) if vectors else np.empty((0, 0), np.float32)
