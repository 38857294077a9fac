"""Counter-based random numbers keyed by (seed, step, purpose) (docs/theory.md §9).

Every random number of a trajectory is a pure function of the seed, the step
index and what it is for, so the trajectory does not depend on the lookahead
split, the number of workers, timing, or restarts.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

_MASK64 = (1 << 64) - 1


class Purpose(IntEnum):
    """What a random draw is for; part of the generator key."""

    NOISE = 1  # xi_n of the O step
    ACCEPT = 2  # acceptance uniform of step n
    INITIAL_MOMENTA = 3  # Maxwell-Boltzmann momenta at the start


class CounterRNG:
    """Philox-4x64 streams: key = (seed, purpose), counter block = step.

    Resetting the state of one reused generator costs ~3 µs, far below a force call.
    """

    def __init__(self, seed: int):
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.seed = seed
        self._bit_generator = np.random.Philox(key=np.array([seed & _MASK64, 0], dtype=np.uint64))
        self._generator = np.random.Generator(self._bit_generator)
        self._counter = np.zeros(4, dtype=np.uint64)
        self._key = np.array([seed & _MASK64, 0], dtype=np.uint64)
        self._state = {"bit_generator": "Philox", "state": {"counter": self._counter, "key": self._key},
                       "buffer": np.zeros(4, dtype=np.uint64), "buffer_pos": 4, "has_uint32": 0, "uinteger": 0}

    def _stream(self, step: int, purpose: Purpose) -> np.random.Generator:
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        self._counter[2] = step & _MASK64  # the setter copies these arrays into the C state
        self._key[1] = int(purpose)
        self._bit_generator.state = self._state
        return self._generator

    def normal(self, step: int, shape: tuple[int, ...], purpose: Purpose = Purpose.NOISE) -> np.ndarray:
        """Standard normal draws for ``step``."""
        return self._stream(step, purpose).standard_normal(shape)

    def log_uniform(self, step: int) -> float:
        """log(u) with u uniform on (0, 1], the acceptance draw of ``step``."""
        u = 1.0 - self._stream(step, Purpose.ACCEPT).random()  # random() is in [0, 1)
        return float(np.log(u))
