"""The ABOBA kernel on harmonic wells against the exact stationary law of the discrete map.

For U = k/2 x^2 the kernel is linear, z_{n+1} = M z_n + L xi, so its stationary
covariance solves the discrete Lyapunov equation S = M S M^T + L L^T exactly.
The simulation must match that prediction within 4 standard errors (batch means
over time blocks; a 4-sigma two-sided band is exceeded by chance with p ~ 6e-5),
and the prediction itself must converge to the set temperature as dt -> 0:
ABOBA samples harmonic configurations exactly, with an O(dt^2) kinetic bias.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from scipy.linalg import solve_discrete_lyapunov

from lsd_engine import FunctionModel, LangevinMD, LangevinParams
from lsd_engine.params import IntegratorConstants
from lsd_engine.toys import harmonic_wells

MASS_AMU = 10.0
SPRING = 1.0  # eV/Å^2
TEMPERATURE_K = 300.0
FRICTION_PER_PS = 20.0


def exact_temperature_ratios(timestep_fs: float) -> tuple[float, float]:
    """(configurational, kinetic) temperature / set temperature of the exact stationary law."""
    k = IntegratorConstants.build(LangevinParams(timestep_fs, TEMPERATURE_K, FRICTION_PER_PS), np.array([MASS_AMU]))
    h, s = k.half_dt, k.noise_scale[0, 0]
    drift = np.array([[1.0, h / MASS_AMU], [0.0, 1.0]])
    kick = np.array([[1.0, 0.0], [-h * SPRING, 1.0]])
    thermostat = np.diag([1.0, k.c])
    step = drift @ kick @ thermostat @ kick @ drift
    noise = drift @ kick @ np.array([[0.0], [s]])
    cov = solve_discrete_lyapunov(step, noise @ noise.T)
    return cov[0, 0] * SPRING / k.kT, cov[1, 1] / MASS_AMU / k.kT


def _ratio_and_error(samples: np.ndarray, n_blocks: int = 20) -> tuple[float, float]:
    block_means = np.array([b.mean() for b in np.array_split(samples, n_blocks)])
    return float(block_means.mean()), float(block_means.std(ddof=1) / np.sqrt(n_blocks))


@pytest.mark.parametrize("timestep_fs", [8.0, 2.0])
def test_sampled_temperatures_match_the_exact_discrete_law(timestep_fs):
    n_atoms = 600
    atoms = Atoms(f"C{n_atoms}", positions=np.zeros((n_atoms, 3)), masses=[MASS_AMU] * n_atoms)
    params = LangevinParams(timestep_fs, TEMPERATURE_K, FRICTION_PER_PS)
    burn_in, n_steps = int(2000 / timestep_fs), int(16000 / timestep_fs)
    result = LangevinMD(atoms, FunctionModel(harmonic_wells), params, seed=11).run(burn_in + n_steps)
    x, p = result.positions[burn_in + 1:], result.momenta[burn_in + 1:]
    kT = params.kT_eV
    conf, conf_err = _ratio_and_error((SPRING * x ** 2).mean(axis=(1, 2)) / kT)
    kin, kin_err = _ratio_and_error((p ** 2 / MASS_AMU).mean(axis=(1, 2)) / kT)
    exact_conf, exact_kin = exact_temperature_ratios(timestep_fs)
    assert abs(conf - exact_conf) < 4 * conf_err, (conf, exact_conf, conf_err)
    assert abs(kin - exact_kin) < 4 * kin_err, (kin, exact_kin, kin_err)


def test_exact_temperatures_converge_to_the_set_temperature_as_dt_shrinks():
    timesteps = [8.0, 4.0, 2.0, 1.0, 0.5]
    ratios = np.array([exact_temperature_ratios(dt) for dt in timesteps])
    np.testing.assert_allclose(ratios[:, 0], 1.0, atol=1e-10)  # configurations: exact for harmonic
    kinetic_bias = ratios[:, 1] - 1.0
    assert np.all(np.diff(kinetic_bias) < 0) and kinetic_bias[-1] < 1e-4
    # O(dt^2): halving dt divides the bias by about 4.
    np.testing.assert_allclose(kinetic_bias[:-1] / kinetic_bias[1:], 4.0, rtol=0.05)
