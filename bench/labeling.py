"""Labeling throughput against floors measured in the same run (machines here are noisy;
only ratios mean something).

1. CLAP audio embedding: the stage's path (int16 windows -> log-mel -> model -> pooling per
   clip, batches padded to a fixed size) against the raw model forward on the same batches
   (precomputed mel features already on the device). Overhead ratio, target <= 1.15.
2. Top-K retrieval: CaptionIndex.search (chunked, K + margin candidates re-ranked in float64
   and proven exact, tie-aware) against a plain matrix-multiply floor over the same
   embeddings and chunks. Target <= 1.2. Also how many clips had to be searched again in a
   higher precision.
3. The global caption count and the balanced draws for 1M clips x 10 candidates
   (synthetic ids), as the stage runs them: per-unit counts summed by the local engine,
   then per-unit vectorized draws. Seconds.

On the CPU, and on a GPU when torch sees one (half precision there).

    .venv/bin/python bench/labeling.py [--architecture HTSAT-tiny] [--windows N] [--captions N] [--clips N]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

# Run as a script, this file's folder is first on sys.path: put the repository root there.
sys.path[0] = str(Path(__file__).resolve().parents[1])
from labeling.clap.audio import pool_windows, to_float  # noqa: E402
from labeling.clap.backend import ClapConfig, load_clap  # noqa: E402
from labeling.clap.mel import log_mel  # noqa: E402
from labeling.labels.balance import balanced_draws, draw_keys  # noqa: E402
from labeling.labels.topk import CaptionIndex  # noqa: E402
from orchestration.engines.local_runner import LocalRunner  # noqa: E402

TARGETS = {"embedding_overhead": 1.15, "topk_over_matmul": 1.2}


def timed(floor, measured, repeat: int = 3) -> tuple[float, float]:
    """Best of `repeat` runs of each, taken in turns so that both see the same machine."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, fn in enumerate((floor, measured)):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[i] = min(best[i], time.perf_counter() - started)
    return best[0], best[1]


def bench_embedding(architecture: str, windows: int, batch: int, device: str) -> dict:
    clap = load_clap(ClapConfig(backend="random", architecture=architecture, device=device, audio_batch_size=batch))
    rng = np.random.default_rng(0)
    t = np.arange(480000) / 48000
    audio = np.stack(
        [
            (0.3 * np.sin(2 * np.pi * (110 + 20 * i) * t) + 0.03 * rng.standard_normal(len(t))) * 32767
            for i in range(windows)
        ]
    ).astype(np.int16)
    counts = [3] * (windows // 3) + ([windows % 3] if windows % 3 else [])
    model, dtype = clap.model, clap.dtype
    # The floor: the network alone, on the same batches' features, already on the device.
    features = []
    with torch.inference_mode():
        for start in range(0, windows, batch):
            chunk = audio[start : start + batch]
            padded = np.concatenate([chunk, np.zeros((batch - len(chunk), chunk.shape[1]), np.int16)])
            mel = log_mel(torch.from_numpy(to_float(padded)).to(clap.device), clap.filters)[:, None].to(dtype)
            features.append(mel)

    def raw() -> None:
        with torch.inference_mode():
            for mel in features:
                model.get_audio_features(input_features=mel).pooler_output.float().cpu()

    def stage() -> None:
        pool_windows(clap.embed_audio(audio), counts)

    stage()  # warm-up: kernels, allocator
    raw_s, stage_s = timed(raw, stage)
    return {
        "architecture": architecture,
        "device": str(clap.device),
        "dtype": str(dtype).removeprefix("torch."),
        "windows": windows,
        "batch": batch,
        "raw_s": raw_s,
        "stage_s": stage_s,
        "windows_per_s": windows / stage_s,
        "x_realtime": windows * 10 / stage_s,
        "embedding_overhead": stage_s / raw_s,
    }


def bench_topk(captions: int, clips: int, device: str, k: int = 10, chunk: int = 65536, clip_batch: int = 256) -> dict:
    device_ = torch.device(device)
    dtype = torch.float16 if device_.type == "cuda" else torch.float32
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((captions, 512), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((clips, 512), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = CaptionIndex(vectors, device_, dtype, chunk)

    def floor() -> None:
        with torch.inference_mode():
            for start in range(0, clips, clip_batch):
                q = torch.from_numpy(queries[start : start + clip_batch]).to(device_, dtype)
                for c in range(0, captions, chunk):
                    block = q @ index.vectors[c : c + chunk].T
                block.float().sum().item()  # the last block back: the work is done

    def search() -> None:
        index.search(queries, k, clip_batch)

    search()
    searched_again = index.searched_again  # clips whose low-precision candidates did not prove their top K
    floor_s, search_s = timed(floor, search)
    return {
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "captions": captions,
        "clips": clips,
        "k": k,
        "matmul_s": floor_s,
        "search_s": search_s,
        "topk_over_matmul": search_s / floor_s,
        "clips_per_s": clips / search_s,
        "searched_again": searched_again,
    }


def bench_balance(clips: int, candidates: int = 10, vocabulary: int = 100_000, unit: int = 64) -> dict:
    """Synthetic top-K lists with Zipf-like popularity, counted and drawn as the stage does."""
    rng = np.random.default_rng(2)
    popularity = np.cumsum(1 / np.arange(1, vocabulary + 1) ** 0.8)
    samples = np.searchsorted(popularity, rng.random((min(clips, 20_000), 4 * candidates)) * popularity[-1])
    # Each clip's list: its first `candidates` distinct draws (a top-K list has no repeats).
    lists = np.stack([row[np.sort(np.unique(row, return_index=True)[1])][:candidates] for row in samples])
    lists = np.tile(lists, (clips // len(lists) + 1, 1))[:clips]  # (clips, candidates) caption indices
    caption_ids = np.array([f"{i:016x}" for i in range(vocabulary)])
    clip_ids = [f"{i:020x}-000000000000" for i in range(clips)]
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        parts = []
        for p, start in enumerate(range(0, clips, clips // 16)):
            ids, counts = np.unique(lists[start : start + clips // 16], return_counts=True)  # a unit's counts
            path = f"{folder}/part-{p:03d}.parquet"
            pq.write_table(
                pa.table(
                    {
                        "vocab": ["tags"] * len(ids),
                        "caption_id": caption_ids[ids],
                        "count": pa.array(counts, pa.int64()),
                    }
                ),
                path,
            )
            parts.append(path)
        map_s = time.perf_counter() - started
        started = time.perf_counter()
        totals = LocalRunner(1).sum_by_key(parts, ["vocab", "caption_id"], "count")
        count_s = time.perf_counter() - started
    frequency = np.zeros(vocabulary, dtype=np.int64)
    frequency[[int(c, 16) for c in totals["caption_id"].to_pylist()]] = totals["count"].to_numpy()
    started = time.perf_counter()
    drawn = 0
    for start in range(0, clips, unit):
        draws = balanced_draws(
            frequency[lists[start : start + unit]], 6, draw_keys(clip_ids[start : start + unit], "tags", 0)
        )
        drawn += int((draws >= 0).sum())
    draw_s = time.perf_counter() - started
    assert drawn == clips * 6 and int(totals["count"].to_numpy().sum()) == clips * candidates
    return {
        "clips": clips,
        "candidates": candidates,
        "vocabulary": vocabulary,
        "unit_counts_s": map_s,
        "global_count_s": count_s,
        "balanced_draws_s": draw_s,
        "total_s": map_s + count_s + draw_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="HTSAT-tiny")
    parser.add_argument(
        "--windows", type=int, default=None, help="10 s windows embedded (default: 24 on CPU, 2048 on GPU)"
    )
    parser.add_argument("--batch", type=int, default=None, help="windows per forward (default: 8 on CPU, 128 on GPU)")
    parser.add_argument("--captions", type=int, default=None, help="vocabulary size (default: 200k on CPU, 2M on GPU)")
    parser.add_argument("--clips", type=int, default=None, help="clips searched (default: 2048 on CPU, 65536 on GPU)")
    parser.add_argument("--balance-clips", type=int, default=1_000_000)
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results: dict = {"targets": TARGETS, "embedding": [], "topk": []}
    for device in devices:
        gpu = device == "cuda"
        results["embedding"].append(
            bench_embedding(
                args.architecture, args.windows or (2048 if gpu else 24), args.batch or (128 if gpu else 8), device
            )
        )
        print(json.dumps(results["embedding"][-1]), flush=True)
        results["topk"].append(
            bench_topk(args.captions or (2_000_000 if gpu else 200_000), args.clips or (65536 if gpu else 2048), device)
        )
        print(json.dumps(results["topk"][-1]), flush=True)
    results["balance"] = bench_balance(args.balance_clips)
    print(json.dumps(results["balance"]), flush=True)
    for row in results["embedding"]:
        print(
            f"embedding overhead ({row['device']}, {row['architecture']}, {row['dtype']}): "
            f"{row['embedding_overhead']:.3f} "
            f"(target <= {TARGETS['embedding_overhead']}); {row['x_realtime']:.0f}x realtime"
        )
    for row in results["topk"]:
        print(
            f"top-K over matmul ({row['device']}, {row['captions']} captions, {row['dtype']}): "
            f"{row['topk_over_matmul']:.3f} "
            f"(target <= {TARGETS['topk_over_matmul']}); {row['clips_per_s']:.0f} clips/s, "
            f"{row['searched_again']} of {row['clips']} clips searched again in higher precision"
        )
    b = results["balance"]
    print(
        f"global count + balanced draws, {b['clips']} clips x {b['candidates']} candidates: {b['total_s']:.1f} s "
        f"(unit counts {b['unit_counts_s']:.1f} s, global sum {b['global_count_s']:.1f} s, draws "
        f"{b['balanced_draws_s']:.1f} s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
