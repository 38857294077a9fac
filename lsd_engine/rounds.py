"""The per-round state of the speculative sampler, one object shared by its two drivers.

``SpeculativeSampler`` drafts, couples and repairs steps into these buffers (its public
``draft_step``, ``couple_slot``, ``draft_bonus`` and ``end_round``); the synchronous driver
(``SpeculativeSampler`` itself, one batched target call per round) and the streaming driver
(:mod:`lsd_engine.streaming`) read and write the same state through them.
"""

from __future__ import annotations

import numpy as np


class RoundState:
    """Buffers of one round (a slot per step, K_max + 1 slots: the last one for the bonus step) and
    the round's counters.

    half: half-step positions x' (Å) each slot's step evaluates forces at; draft_forces: raw draft
    forces there; noise: the step's Gaussian draw; prev_momenta: momenta the step starts from;
    new_momenta, new_positions: the step's result (overwritten by the repair on a rejection);
    applied: the draft correction the slot was drafted with (zeros without one).
    left: drafted steps left in the round before its bonus step; verified / accepted: drafted steps
    of the round verified / accepted so far; labels: (x', F_target, F_draft) of the round's verified
    steps, for the draft correction; timing: the last synchronous round's timings, for a measuring
    lookahead policy; correction_primed: whether the correction has seen its first label.
    """

    def __init__(self, n_atoms: int, max_lookahead: int, lookahead: int):
        self.n_atoms = n_atoms
        self.left = lookahead
        self.verified = 0
        self.accepted = 0
        self.labels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.timing: dict[str, float] = {}
        self.correction_primed = False
        self.allocate(max_lookahead)

    @property
    def slots(self) -> int:
        return self.half.shape[0]

    def allocate(self, max_lookahead: int) -> None:
        """(Re)size the buffers for rounds of up to ``max_lookahead`` drafted steps (counters are kept)."""
        shape = (max_lookahead + 1, self.n_atoms, 3)
        self.half = np.empty(shape)
        self.draft_forces = np.empty(shape)
        self.noise = np.empty(shape)
        self.prev_momenta = np.empty(shape)
        self.new_momenta = np.empty(shape)
        self.new_positions = np.empty(shape)
        self.applied = np.zeros(shape)

    def result(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the (positions, momenta) the step in ``slot`` produced."""
        return self.new_positions[slot].copy(), self.new_momenta[slot].copy()

    def reset_counters(self, lookahead: int) -> None:
        """A new round of ``lookahead`` drafted steps starts."""
        self.verified = self.accepted = 0
        self.timing = {}
        self.left = lookahead
