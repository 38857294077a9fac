"""The reflection maximal coupling alone, on two Gaussians with equal covariance."""

from __future__ import annotations

import numpy as np
from scipy import stats

from lsd_engine.coupling import acceptance_probability, couple, log_acceptance_ratio, reflect

N_DRAWS = 40_000


def _coupled_draws(mean_draft, mean_target, scale, seed):
    rng = np.random.default_rng(seed)
    samples = np.empty((N_DRAWS,) + mean_draft.shape)
    accepted = np.empty(N_DRAWS, dtype=bool)
    for i in range(N_DRAWS):
        samples[i], accepted[i] = couple(mean_draft, mean_target, scale, rng.standard_normal(mean_draft.shape),
                                         np.log(1.0 - rng.random()))
    return samples, accepted


def test_coupled_output_has_the_target_distribution_and_predicted_acceptance():
    mean_draft = np.array([[0.0, 0.3, -0.2], [0.1, 0.0, 0.0]])
    mean_target = np.array([[0.8, 0.0, 0.1], [-0.5, 0.4, 0.2]])
    scale = np.array([[0.7], [1.3]])  # per-atom scale, as in the sampler
    samples, accepted = _coupled_draws(mean_draft, mean_target, scale, seed=7)
    # Every coordinate, standardised by the target, must be N(0, 1): KS at alpha 1e-3 / 6 (Bonferroni).
    z = ((samples - mean_target) / scale).reshape(N_DRAWS, -1)
    p_values = [stats.kstest(z[:, c], "norm").pvalue for c in range(z.shape[1])]
    assert min(p_values) > 1e-3 / len(p_values)
    # The whitened squared norm is chi^2 with 6 degrees of freedom (checks the joint law, not only marginals).
    assert stats.kstest((z ** 2).sum(axis=1), stats.chi2(df=6).cdf).pvalue > 1e-3
    # Acceptance = 2 Phi(-|delta|/2); binomial standard error, 4-sigma tolerance.
    delta_norm = np.linalg.norm((mean_target - mean_draft) / scale)
    expected = float(acceptance_probability(delta_norm))
    assert abs(expected - 2 * stats.norm.cdf(-delta_norm / 2)) < 1e-12
    sigma = np.sqrt(expected * (1 - expected) / N_DRAWS)
    assert abs(accepted.mean() - expected) < 4 * sigma
    assert 0.2 < expected < 0.8  # both branches matter in this test


def test_equal_means_always_accept_and_reflection_is_an_involution():
    mean = np.ones((3, 3))
    samples, accepted = _coupled_draws(mean, mean, np.ones((3, 1)), seed=1)
    assert accepted.all()
    rng = np.random.default_rng(0)
    z, delta = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    z_reflected = reflect(z, delta)
    np.testing.assert_allclose(reflect(z_reflected, delta), z, atol=1e-12)
    np.testing.assert_allclose(np.sum(z_reflected ** 2), np.sum(z ** 2))  # an isometry
    assert np.isclose(np.sum(z_reflected * delta), -np.sum(z * delta))  # flips the component along delta
    assert log_acceptance_ratio(z[None], np.zeros((1, 3, 3)))[0] == 0.0
