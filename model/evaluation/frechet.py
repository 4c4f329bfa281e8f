"""Fréchet distance between two sets of embeddings (FAD), and FAD∞, its extrapolation to infinite samples.

Each set is summarized by a Gaussian (mean, covariance; float64 throughout), and
FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2).
The trace of the matrix square root is computed from symmetric eigen-decompositions,
tr((S_a S_b)^1/2) = sum sqrt(eig(S_a^1/2 S_b S_a^1/2)), which stays real and exact on
rank-deficient covariances (fewer clips than dimensions) where scipy's sqrtm of the
non-symmetric product needs the epsilon-on-the-diagonal correction and leaves an imaginary
residue to check. Eigenvalues that rounding pushes below zero are checked to be rounding
(tiny against the largest) and then clipped to zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.evaluation.errors import EvaluationError

# An eigenvalue more negative than this share of the largest is not rounding: the matrix is not a covariance.
NEGATIVE_EIGENVALUE_TOLERANCE = 1e-8


@dataclass(frozen=True)
class Gaussian:
    """A set of embeddings summarized: mean (D,), covariance (D, D), and how many it came from."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int


def fit_gaussian(embeddings: np.ndarray, name: str = "embeddings") -> Gaussian:
    """(N, D) -> the set's mean and (unbiased) covariance in float64; N >= 2."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise EvaluationError(f"{name}: a covariance needs at least 2 clips, got {len(x) if x.ndim else 0}")
    if not np.isfinite(x).all():
        raise EvaluationError(f"{name}: embeddings hold NaN or infinite values")
    return Gaussian(x.mean(axis=0), np.cov(x, rowvar=False), len(x))


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """The Fréchet distance between two Gaussians (FAD when they summarize audio embeddings)."""
    if a.mean.shape != b.mean.shape:
        raise EvaluationError(f"embedding sizes differ: {a.mean.shape[0]} and {b.mean.shape[0]}")
    difference = a.mean - b.mean
    root_a = _psd_sqrt(a.covariance)
    middle = root_a @ b.covariance @ root_a
    trace_sqrt = float(np.sqrt(_psd_eigenvalues((middle + middle.T) / 2)).sum())
    distance = float(difference @ difference + np.trace(a.covariance) + np.trace(b.covariance) - 2 * trace_sqrt)
    # Identical sets give 0 up to rounding, which may land a hair below it.
    return max(distance, 0.0)


def fad(generated: np.ndarray, reference: np.ndarray) -> float:
    """FAD of two embedding sets (N, D) and (M, D)."""
    return frechet_distance(fit_gaussian(generated, "generated"), fit_gaussian(reference, "reference"))


def fad_infinity(
    generated: np.ndarray, reference: np.ndarray, *, points: int = 15, min_size: int = 0, seed: int = 0
) -> tuple[float, list[tuple[int, float]]]:
    """FAD∞ (fadtk): FAD of random subsets of the generated set against the whole reference,
    at `points` sizes from min_size (default: a fifth of the set, at least 2) to all of it,
    fitted as a line in 1/size and read at 1/size = 0. FAD is biased upward by a term that
    falls as 1/size, so the intercept estimates FAD with infinitely many generated clips.
    Returns the estimate and the (size, FAD) points it was fitted to; subsets come from `seed`."""
    count = len(generated)
    low = min_size or max(2, count // 5)
    if count < 3 or low >= count:
        raise EvaluationError(f"FAD∞ needs more generated clips than its smallest subset ({low}); got {count}")
    reference_gaussian = fit_gaussian(reference, "reference")
    rng = np.random.default_rng(seed)
    sizes = sorted({int(round(n)) for n in np.linspace(low, count, points)})
    curve = []
    for size in sizes:
        subset = generated[rng.choice(count, size=size, replace=False)]
        curve.append((size, frechet_distance(fit_gaussian(subset, "generated"), reference_gaussian)))
    return extrapolate_to_infinity(curve), curve


def extrapolate_to_infinity(curve: Sequence[tuple[int, float]]) -> float:
    """The least-squares line through (1/size, value), read at 1/size = 0."""
    inverse = np.array([1.0 / size for size, _ in curve])
    values = np.array([value for _, value in curve])
    _, intercept = np.polyfit(inverse, values, deg=1)
    return float(intercept)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    values = _checked_clip(values)
    return (vectors * np.sqrt(values)) @ vectors.T


def _psd_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    return _checked_clip(np.linalg.eigvalsh(matrix))


def _checked_clip(values: np.ndarray) -> np.ndarray:
    scale = max(float(np.abs(values).max(initial=0.0)), np.finfo(np.float64).tiny)
    if values.min(initial=0.0) < -NEGATIVE_EIGENVALUE_TOLERANCE * scale:
        raise ValueError(f"not positive semi-definite: eigenvalue {values.min():.3g} against largest {scale:.3g}")
    return np.clip(values, 0.0, None)
