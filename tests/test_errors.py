"""Bad parameters and bad model outputs give clear errors and lose no data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase import Atoms

from exactness import POOR_DRAFT, TARGET, start_atoms
from lsd_engine import FunctionModel, LangevinMD, LangevinParams, ModelError, SpeculativeSampler

PARAMS = LangevinParams(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)


@pytest.mark.parametrize("name", ["timestep_fs", "temperature_K", "friction_per_ps"])
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "fast"])
def test_bad_langevin_parameters_name_the_parameter(name, bad):
    values = dict(timestep_fs=1.0, temperature_K=300.0, friction_per_ps=10.0)
    values[name] = bad
    with pytest.raises(ValueError, match=name):
        LangevinParams(**values)


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match="lookahead"):
        SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, lookahead=0)
    with pytest.raises(ValueError, match="seed"):
        SpeculativeSampler(start_atoms(), POOR_DRAFT, TARGET, PARAMS, seed=-1)
    with pytest.raises(TypeError, match="evaluate"):
        SpeculativeSampler(start_atoms(), lambda x: x, TARGET, PARAMS)
    with pytest.raises(ValueError, match="empty"):
        LangevinMD(Atoms(), TARGET, PARAMS)
    bound = FunctionModel(TARGET.fn, name="bound", n_atoms=5)
    with pytest.raises(ValueError, match="bound to 5 atoms"):
        SpeculativeSampler(start_atoms(), POOR_DRAFT, bound, PARAMS)
    with pytest.raises(ValueError, match="n_steps"):
        LangevinMD(start_atoms(), TARGET, PARAMS).run(-3)
    with pytest.raises(FileNotFoundError, match="output folder"):
        LangevinMD(start_atoms(), TARGET, PARAMS).run(3, trajectory="/nonexistent/dir/run.traj")


class NanAfter:
    """Like TARGET, but row ``bad_row`` of the n-th call is NaN."""

    def __init__(self, n_calls, bad_row=0):
        self.calls, self.n_calls, self.bad_row = 0, n_calls, bad_row

    def __call__(self, positions):
        energies, forces = TARGET.evaluate(positions)
        self.calls += 1
        if self.calls >= self.n_calls:
            forces[self.bad_row, 0, 0] = np.nan
        return energies, forces


def test_nan_forces_stop_the_run_naming_model_and_step_and_keep_the_data(tmp_path):
    target = FunctionModel(NanAfter(6, bad_row=2), name="flaky-target")
    sampler = SpeculativeSampler(start_atoms(), POOR_DRAFT, target, PARAMS, lookahead=4, seed=1)
    with pytest.raises(ModelError, match=r"target model 'flaky-target'.*NaN/inf.*step \d+") as info:
        sampler.run(100, trajectory=tmp_path / "t.traj", checkpoint=tmp_path / "c.npz",
                    summary=tmp_path / "s.json")
    error = info.value
    partial = error.partial_result
    assert partial is not None and partial.steps[-1] == sampler.step > 0
    assert error.step > sampler.step  # the failing step lies after the last good one
    np.testing.assert_array_equal(partial.positions[-1], sampler.positions)
    assert "flaky-target" in json.loads((tmp_path / "s.json").read_text())["error"]
    assert (tmp_path / "c.npz").exists()


def test_wrong_shapes_and_backend_exceptions_are_reported_with_context():
    wrong_shape = FunctionModel(lambda x: (np.zeros(len(x)), np.zeros((len(x), 2, 3))), name="wrong")
    with pytest.raises(ModelError, match=r"draft model 'wrong'.*shape"):
        SpeculativeSampler(start_atoms(), wrong_shape, TARGET, PARAMS).run(5)

    def broken(positions):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(ModelError, match=r"target model 'broken' failed at step 0: RuntimeError: CUDA out of memory"):
        LangevinMD(start_atoms(), FunctionModel(broken), PARAMS).run(5)
