"""`soundry eval` speed against floors measured in the same run (machines here are noisy;
only ratios mean something).

1. Fréchet distance of two N x D embedding sets (10,000 x 512 by default) on one thread:
   seconds (target: under one), and the ratio to the floor every FAD implementation pays,
   the two covariance matrices (np.cov).
2. Embedding throughput: the command's path (audio files -> decode -> 10 s windows -> CLAP
   -> pooled clip vectors, ClapEmbedder through embed_files) against the bare CLAP forward
   pass on the same windows' mel features, already made. Ratio, target <= 1.15 (the label
   stage's).

    .venv/bin/python bench/evaluation.py [--clips N] [--dim D] [--files N] [--architecture HTSAT-tiny] [--json PATH]
"""

from __future__ import annotations

import os

# One BLAS thread, set before numpy loads: the target is per core.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402

# Run as a script, this file's folder is first on sys.path: put the repository root there.
sys.path[0] = str(Path(__file__).resolve().parents[1])
from labeling.clap.audio import to_float, windows  # noqa: E402
from labeling.clap.backend import ClapConfig  # noqa: E402
from labeling.clap.mel import log_mel  # noqa: E402
from model.evaluation.audio_folder import audio_files, embed_files  # noqa: E402
from model.evaluation.embedding import ClapEmbedder  # noqa: E402
from model.evaluation.frechet import fad  # noqa: E402

TARGETS = {"frechet_s": 1.0, "embedding_overhead": 1.15}


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def bench_frechet(clips: int, dim: int) -> dict:
    rng = np.random.default_rng(0)
    generated = rng.standard_normal((clips, dim)).astype(np.float32)
    reference = (rng.standard_normal((clips, dim)) * 1.1 + 0.05).astype(np.float32)
    covariances_s = best_of(lambda: (np.cov(generated, rowvar=False), np.cov(reference, rowvar=False)))
    frechet_s = best_of(lambda: fad(generated, reference))
    return {
        "clips": clips,
        "dim": dim,
        "frechet_s": frechet_s,
        "covariances_s": covariances_s,
        "frechet_over_covariances": frechet_s / covariances_s,
    }


def bench_embedding(files: int, architecture: str) -> dict:
    torch.set_num_threads(1)
    config = ClapConfig(backend="random", architecture=architecture, device="cpu", audio_batch_size=8, threads=1)
    embedder = ClapEmbedder(config)
    clap = embedder.clap
    rng = np.random.default_rng(0)
    t = np.arange(48_000 * 10) / 48_000
    with tempfile.TemporaryDirectory() as folder:
        for i in range(files):
            tone = 0.3 * np.sin(2 * np.pi * (110 + 20 * i) * t) + 0.03 * rng.standard_normal(t.size)
            soundfile.write(Path(folder) / f"clip-{i:04d}.wav", tone.astype(np.float32), 48_000)
        paths = audio_files(folder, "bench")
        all_windows = np.concatenate([windows(soundfile.read(p, dtype="float32")[0]) for p in paths])
        batch = config.audio_batch_size
        features = []
        for start in range(0, len(all_windows), batch):
            chunk = all_windows[start : start + batch]
            padded = np.concatenate([chunk, np.zeros((batch - len(chunk), chunk.shape[1]), np.int16)])
            features.append(log_mel(torch.from_numpy(to_float(padded)), clap.filters)[:, None].to(clap.dtype))

        def bare() -> None:
            with torch.inference_mode():
                for mel in features:
                    clap.model.get_audio_features(input_features=mel).pooler_output.float()

        def command() -> None:
            embed_files(paths, embedder, 32)

        command()  # warm-up: kernels, allocator
        bare_s = command_s = float("inf")
        for _ in range(3):  # in turns, so both see the same machine
            bare_s = min(bare_s, best_of(bare, 1))
            command_s = min(command_s, best_of(command, 1))
    return {
        "architecture": architecture,
        "files": files,
        "windows": int(len(all_windows)),
        "bare_forward_s": bare_s,
        "command_s": command_s,
        "x_realtime": files * 10 / command_s,
        "embedding_overhead": command_s / bare_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--files", type=int, default=16, help="10 s audio files embedded")
    parser.add_argument("--architecture", default="HTSAT-tiny")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results = {
        "frechet": bench_frechet(args.clips, args.dim),
        "embedding": bench_embedding(args.files, args.architecture),
    }
    for name, result in results.items():
        print(name, json.dumps(result, indent=2))
    f, e = results["frechet"], results["embedding"]
    print(
        f"Fréchet distance {f['clips']} x {f['dim']}: {f['frechet_s']:.3f} s on one thread "
        f"(target < {TARGETS['frechet_s']} s), {f['frechet_over_covariances']:.2f}x the two covariances"
    )
    print(
        f"embedding: {e['embedding_overhead']:.3f}x the bare CLAP forward (target <= {TARGETS['embedding_overhead']})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
