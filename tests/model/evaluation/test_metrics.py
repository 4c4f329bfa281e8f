"""The metrics against numbers worked out independently: closed forms for Gaussians, scipy's
sqrtm with the usual correction, KL and cosines of hand-made distributions and vectors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from model.evaluation.clap_score import clap_scores, distribution
from model.evaluation.errors import EvaluationError
from model.evaluation.frechet import (
    Gaussian,
    extrapolate_to_infinity,
    fad,
    fad_infinity,
    fit_gaussian,
    frechet_distance,
)
from model.evaluation.tag_divergence import kl_divergence, tag_probabilities


def _random_covariance(rng: np.random.Generator, dim: int, rank: int | None = None) -> np.ndarray:
    factor = rng.standard_normal((dim, rank or dim))
    return factor @ factor.T / dim


def _sqrtm_reference(a: Gaussian, b: Gaussian, eps: float = 1e-6) -> float:
    """The usual implementation (pytorch-fid, fadtk): scipy's sqrtm of the product, an epsilon
    on the diagonals when it fails, the imaginary residue dropped."""
    root = scipy.linalg.sqrtm(a.covariance @ b.covariance)
    if not np.isfinite(root).all():
        offset = np.eye(len(a.mean)) * eps
        root = scipy.linalg.sqrtm((a.covariance + offset) @ (b.covariance + offset))
    difference = a.mean - b.mean
    return float(difference @ difference + np.trace(a.covariance) + np.trace(b.covariance) - 2 * np.trace(root.real))


def test_closed_form_for_commuting_covariances():
    # Diagonal covariances commute: FD = |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    a = Gaussian(np.array([0.0, 1.0, 2.0]), np.diag([1.0, 4.0, 9.0]), 100)
    b = Gaussian(np.array([1.0, 1.0, 0.0]), np.diag([4.0, 1.0, 0.25]), 100)
    expected = (1 + 0 + 4) + (1 + 1 + 6.25)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)


def test_mean_shift_alone_gives_its_squared_length():
    rng = np.random.default_rng(0)
    covariance = _random_covariance(rng, 16)
    shift = rng.standard_normal(16)
    a = Gaussian(np.zeros(16), covariance, 10)
    b = Gaussian(shift, covariance, 10)
    assert frechet_distance(a, b) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_general_covariances_match_scipy_sqrtm_and_are_symmetric():
    rng = np.random.default_rng(1)
    a = Gaussian(rng.standard_normal(24), _random_covariance(rng, 24), 10)
    b = Gaussian(rng.standard_normal(24), _random_covariance(rng, 24), 10)
    assert frechet_distance(a, b) == pytest.approx(_sqrtm_reference(a, b), rel=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)


def test_rank_deficient_covariances_stay_real_and_finite():
    # Fewer clips than dimensions: both covariances singular, the product's sqrtm ill-conditioned.
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((20, 64)), rng.standard_normal((30, 64)) + 0.5
    value = fad(x, y)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(_sqrtm_reference(fit_gaussian(x), fit_gaussian(y)), rel=1e-4)
    assert fad(x, x) == pytest.approx(0.0, abs=1e-9)


def test_samples_estimate_the_closed_form():
    rng = np.random.default_rng(3)
    a = rng.normal([0, 0, 0, 0], [1, 2, 1, 1], size=(40_000, 4))
    b = rng.normal([1, 0, 0, 0], [1, 1, 1, 3], size=(40_000, 4))
    expected = 1 + (2 - 1) ** 2 + (1 - 3) ** 2
    assert fad(a, b) == pytest.approx(expected, rel=0.02)


def test_identical_sets_give_zero():
    x = np.random.default_rng(4).standard_normal((50, 8))
    assert fad(x, x.copy()) == pytest.approx(0.0, abs=1e-10)


def test_fad_infinity_removes_the_small_sample_bias():
    # Same distribution: the true FD is 0, and FAD of a few hundred clips is biased upward by ~c/n.
    rng = np.random.default_rng(5)
    reference = rng.standard_normal((20_000, 16))
    generated = rng.standard_normal((400, 16))
    estimate, curve = fad_infinity(generated, reference, points=10, seed=0)
    assert curve[-1][0] == 400 and len(curve) == 10
    assert abs(estimate) < 0.25 * fad(generated, reference)
    assert fad_infinity(generated, reference, points=10, seed=0)[0] == estimate  # seeded


def test_extrapolation_reads_the_line_at_infinity():
    curve = [(n, 2.5 + 40.0 / n) for n in (50, 100, 200, 400)]
    assert extrapolate_to_infinity(curve) == pytest.approx(2.5, rel=1e-9)


@pytest.mark.parametrize("rows", [0, 1])
def test_too_few_clips_for_a_covariance_is_a_user_error(rows):
    with pytest.raises(EvaluationError, match="generated: a covariance needs at least 2 clips"):
        fad(np.zeros((rows, 4)), np.ones((5, 4)))


def test_tag_probabilities_and_kl_by_hand():
    tags = np.eye(3)
    audio = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    probabilities = tag_probabilities(audio, tags, temperature=1.0)
    e = np.e
    assert probabilities[0] == pytest.approx([e / (e + 2), 1 / (e + 2), 1 / (e + 2)])
    p, q = np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]])
    assert kl_divergence(p, q)[0] == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(0.5 / 0.75))
    assert kl_divergence(probabilities, probabilities) == pytest.approx([0.0, 0.0], abs=1e-12)
    assert np.isfinite(kl_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))).all()


def test_clap_score_is_the_cosine_of_pairs():
    text = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    audio = np.array([[1.0, 0.0], [0.0, -1.0], [1.0, 0.0]])
    assert clap_scores(text, audio) == pytest.approx([1.0, -1.0, np.sqrt(0.5)])
    summary = distribution(clap_scores(text, audio))
    assert summary["count"] == 3 and summary["max"] == pytest.approx(1.0) and summary["min"] == pytest.approx(-1.0)
