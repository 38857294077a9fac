"""The cache-safe timer times the work, not a result cache, and leaves first calls out."""

import time

import numpy as np
import pytest

from lsd_engine import models, systems, timing
from lsd_engine.models.base import FunctionModel
from lsd_engine.toys import harmonic_wells


def _median_ms(model, configurations):
    times = []
    for x in configurations:
        t0 = time.perf_counter()
        model.evaluate(x)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def test_emt_on_copper_is_timed_doing_the_work():
    atoms = systems.copper_fcc(2)
    emt = models.create("emt", atoms)  # an ASE calculator: caches results at unchanged positions
    x = atoms.positions[None]
    rng = np.random.default_rng(0)
    manual = _median_ms(emt, [x + 1e-4 * rng.standard_normal(x.shape) for _ in range(7)])
    cached = _median_ms(emt, [x] * 7)
    assert manual > 4 * cached  # the cache is real, so a timer that repeats positions is fooled
    timed = 1e3 * timing.model_seconds_per_call(emt, x, repeats=7)
    assert manual / 2 < timed < 2 * manual
    costs = timing.measure_costs(emt, emt, x, [1, 3], repeats=3)
    assert set(costs["target_batch_s"]) == {1, 3}
    assert costs["draft_step_s"] > 1e-3 * manual / 2
    assert costs["target_batch_s"][3] > 2 * costs["draft_step_s"]


def test_every_call_sees_new_positions_and_warm_up_is_excluded():
    seen = []
    first_call_s = 0.05

    def slow_first(positions):
        if not seen:
            time.sleep(first_call_s)
        seen.append(np.array(positions))
        return harmonic_wells(positions)

    model = FunctionModel(slow_first)
    x = np.zeros((1, 4, 3))
    assert timing.model_seconds_per_call(model, x, repeats=5) < first_call_s / 5  # default: one warm-up call
    assert len(seen) == 6
    shifts = [float(np.abs(s - x).max()) for s in seen]
    assert len({s.tobytes() for s in seen}) == 6 and 0 < max(shifts) < 1e-4
    seen.clear()
    assert timing.model_seconds_per_call(model, x, repeats=1, warm_up_calls=0) >= first_call_s
    with pytest.raises(ValueError, match="repeats"):
        timing.seconds_per_call(model.evaluate, x, repeats=0)
    assert timing.correction_seconds_per_call(None, x[0]) == 0.0
