"""A small evaluation during training: every `eval.every` steps, on rank 0, the EMA weights speak
the first `eval.prompts` prompts of the version's `eval.split` with seeds from (run seed, clip_id),
and the Fréchet distance of their CLAP embeddings to those clips' own audio, and the CLAP score of
the generated clips against their prompts, are logged beside the losses. The reference clips are
embedded once; the same prompts and noise every time, so the figures move only with the weights.
"""

from __future__ import annotations

import numpy as np
import soxr

from model.latent_diffusion import LatentDiffusion
from model.training.config import TrainConfig


class PeriodicEval:
    def __init__(self, config: TrainConfig) -> None:
        self.config, self.every = config, config.eval.every
        if not self.every:
            return
        from model.evaluation.embedding import ClapEmbedder
        from model.evaluation.generate_split import split_requests
        from model.evaluation.version_split import embed_version_split

        options = config.eval
        self.requests = split_requests(config.data.version, options.split, options.prompts)
        self.embedder = ClapEmbedder(options.clap)
        self.reference = embed_version_split(
            config.data.version, options.split, self.embedder, options.batch_size, options.prompts
        )
        self.prompt_vectors = self.embedder.embed_text([r.prompt or " " for r in self.requests])

    def due(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0

    def run(self, sampler: LatentDiffusion) -> dict[str, float]:
        """eval_fad and eval_clap_score of the sampler's clips for the fixed prompts."""
        from model.evaluation.clap_score import clap_scores
        from model.evaluation.frechet import fit_gaussian, frechet_distance
        from model.evaluation.generate_split import generate_requests

        options, rate = self.config.eval, sampler.config.sample_rate
        made = {}
        for request, audio in generate_requests(
            sampler, self.requests, self.config.seed, options.steps, options.cfg_scale, options.batch_size
        ):
            mono = audio.float().mean(dim=0).numpy()
            made[request.clip_id] = soxr.resample(mono, rate, self.embedder.sample_rate).astype(np.float32)
        vectors = self.embedder.embed([made[r.clip_id] for r in self.requests])  # the prompts' order
        fad = frechet_distance(fit_gaussian(vectors, "generated"), fit_gaussian(self.reference.vectors, "reference"))
        return {"eval_fad": fad, "eval_clap_score": float(np.mean(clap_scores(self.prompt_vectors, vectors)))}
