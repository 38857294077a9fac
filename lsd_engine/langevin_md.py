"""Plain Langevin MD with one model: the baseline LSD reproduces in distribution."""

from __future__ import annotations

import time

import numpy as np
from ase import Atoms

from .kernel import end_position, half_step_position, momentum_mean, next_momenta
from .models.base import ForceModel, evaluate_checked
from .params import LangevinParams
from .results import StatsCounter, StepBlock, StepKind
from .simulation import Simulation
from .validation import check_model


class LangevinMD(Simulation):
    """ABOBA Langevin dynamics driven by ``model`` (docs/theory.md §2).

    Randomness comes from the counter-based generator keyed by (seed, step), so
    a SpeculativeSampler whose draft equals ``model`` reproduces this trajectory.
    """

    def __init__(self, atoms: Atoms, model: ForceModel, params: LangevinParams, seed: int = 0):
        super().__init__(atoms, params, seed)
        self.model = check_model(model, "target", self.n_atoms)
        self._kind = np.array([StepKind.TARGET], dtype=np.int8)

    @property
    def target(self) -> ForceModel:
        return self.model

    def _prepare(self, counter: StatsCounter) -> None:
        if self.energy is None:
            t0 = time.perf_counter()
            energies, _ = evaluate_checked(self.model, self.positions[None], role="target", first_step=self.step)
            counter.stats.time_target_s += time.perf_counter() - t0
            counter.stats.target_calls += 1
            counter.stats.target_evaluations += 1
            self.energy = float(energies[0])

    def _advance(self, max_steps: int, counter: StatsCounter) -> StepBlock:
        k = self.constants
        step = self.step + 1
        half = half_step_position(self.positions, self.momenta, k)
        t0 = time.perf_counter()
        energies, forces = evaluate_checked(self.model, half[None], role="target", first_step=step)
        counter.stats.time_target_s += time.perf_counter() - t0
        counter.stats.target_calls += 1
        counter.stats.target_evaluations += 1
        counter.stats.target_steps += 1
        momenta = next_momenta(momentum_mean(self.momenta, forces[0], k), self.rng.normal(step, half.shape), k)
        positions = end_position(half, momenta, k)
        return StepBlock(positions[None], momenta[None], energies, self._kind)
