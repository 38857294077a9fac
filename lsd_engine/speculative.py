"""The speculative Langevin sampler (docs/theory.md §3-4), synchronous or streaming.

Synchronous mode, each round: draft K ABOBA steps with the cheap model (plus EC
residual), evaluate the target at the K (+1 bonus) half-step positions in one
batched call, verify in order with the reflection maximal coupling, keep the
accepted steps, repair the first rejected one, or take the bonus step from the
target when all K pass. Asynchronous mode (:mod:`lsd_engine.streaming`) produces
the same trajectory step by step, with the target evaluations streamed to free
workers; both modes share the per-step draft / couple / repair code below.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from ase import Atoms

from .corrections import ConstantCorrection, DraftCorrection
from .coupling import log_acceptance_ratio, reflect
from .executors.local import Executor, LocalExecutor
from .kernel import end_position, half_step_position, momentum_mean, next_momenta
from .models.base import ForceModel, evaluate_checked
from .params import DEFAULT_LOOKAHEAD, LangevinParams
from .results import StatsCounter, StepBlock, StepKind
from .rounds import RoundState
from .simulation import Simulation
from .streaming import StreamingScheduler
from .validation import check_model, positive_int

MODES = ("sync", "async")


class SpeculativeSampler(Simulation):
    """Langevin MD with the target model, sped up by drafting with a cheap model.

    lookahead: K drafted steps per round. error_correction: draft with
    F_draft(x) + [F_target - F_draft](x_ref), x_ref the last target-verified
    position (docs/theory.md §5). draft_correction: any other DraftCorrection (e.g. a
    learned residual model, lsd_engine.learning) in place of that constant one;
    it is frozen during a round and learns from the round's target labels after
    it. The output trajectory is distributed exactly as
    ``LangevinMD(atoms, target, params)``; with draft == target it is identical.

    executor: where target batches run (default in-process; ``DaskExecutor`` for
    dask workers / GPUs). mode: "sync" evaluates each round's K+1 half-step
    positions as one batch (split over the executor's workers); "async" streams
    each drafted half-step position to the next free worker and verifies results
    in order as they arrive, cancelling newer drafts on a rejection (at most K+1
    steps in flight). Both modes give bitwise the same trajectory for a seed when
    the target computes each row of a batch independently.

    lookahead_policy: choose K per round (e.g. ``lsd_engine.adaptive.AdaptiveLookahead``:
    ``choose()``, ``record_round(verified, accepted, ...)``, ``state()``, ``restore()``,
    ``k_min``, ``k_max``). K is fixed before a round is drafted, from finished rounds
    only, so the sampler stays exact; ``lookahead`` is then the current round's K and
    the buffers hold ``k_max`` steps. In async mode the draft waits at each round's
    bonus step until the round is verified, because the next K depends on it.
    """

    streaming_scheduler = StreamingScheduler  # the asynchronous mode's driver (a class attribute, for tests)

    def __init__(self, atoms: Atoms, draft: ForceModel, target: ForceModel, params: LangevinParams,
                 lookahead: int = DEFAULT_LOOKAHEAD, error_correction: bool = True, seed: int = 0,
                 executor: Executor | None = None, mode: str = "sync",
                 draft_correction: DraftCorrection | None = None, lookahead_policy: Any | None = None):
        super().__init__(atoms, params, seed)
        self.draft = check_model(draft, "draft", self.n_atoms)
        self._target = check_model(target, "target", self.n_atoms)
        self.lookahead = positive_int(lookahead, "lookahead")
        if lookahead_policy is not None:
            needed = ("choose", "record_round", "state", "restore", "k_max")
            missing = [name for name in needed if not hasattr(lookahead_policy, name)]
            if missing:
                raise TypeError(f"lookahead_policy lacks {', '.join(missing)} "
                                "(see lsd_engine.adaptive.AdaptiveLookahead)")
            self.lookahead = self._checked_choice(lookahead_policy.choose(), lookahead_policy)
        self.lookahead_policy = lookahead_policy
        self.round = RoundState(self.n_atoms, self.max_lookahead(), self.lookahead)  # buffers and counters
        self._counter: StatsCounter | None = None  # the current run() call's counters
        if draft_correction is not None and not isinstance(draft_correction, DraftCorrection):
            raise TypeError("draft_correction must implement correction/observe/state/restore "
                            f"(lsd_engine.corrections.DraftCorrection), got {type(draft_correction).__name__}")
        if draft_correction is not None and not error_correction:
            raise ValueError("draft_correction needs error_correction=True (it replaces the constant correction)")
        self.error_correction = bool(error_correction)
        self.draft_correction: DraftCorrection | None = (
            draft_correction if draft_correction is not None else ConstantCorrection() if error_correction else None)
        if mode not in MODES:
            raise ValueError(f"mode must be 'sync' or 'async', got {mode!r}")
        self.mode = mode
        self.executor = executor if executor is not None else LocalExecutor()
        if not callable(getattr(self.executor, "evaluate", None)):
            raise TypeError(f"executor must have an evaluate method, got {type(self.executor).__name__}")
        if mode == "async" and not all(hasattr(self.executor, a) for a in ("submit", "wait_any", "capacity")):
            raise TypeError(f"mode='async' needs an executor with submit, wait_any and capacity "
                            f"(subclass lsd_engine.executors.Executor); got {type(self.executor).__name__}")
        self._streamer = self.streaming_scheduler(self)
        self._retries_at_start = 0

    @property
    def target(self) -> ForceModel:
        return self._target

    @property
    def round_left(self) -> int:
        """Drafted steps left in the current round before its bonus step (``self.round.left``)."""
        return self.round.left

    @staticmethod
    def _checked_choice(k: Any, policy: Any) -> int:
        k_min, k_max = int(getattr(policy, "k_min", 1)), int(policy.k_max)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not k_min <= k <= k_max:
            raise ValueError(f"lookahead_policy.choose() returned {k!r}; expected an integer in {k_min}..{k_max}")
        return int(k)

    def max_lookahead(self) -> int:
        """Largest K a round can use: the buffer size (minus the bonus slot)."""
        return int(self.lookahead_policy.k_max) if self.lookahead_policy is not None else self.lookahead

    def _options(self) -> dict[str, Any]:
        return {"lookahead": self.lookahead, "error_correction": self.error_correction, "mode": self.mode,
                "draft": self.draft.name, "target": self._target.name,
                "draft_correction": getattr(self.draft_correction, "name", None),
                "adaptive_lookahead": self.lookahead_policy is not None,
                "max_lookahead": self.max_lookahead()}

    def _lookahead(self) -> int:
        return self.max_lookahead()

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        if self.draft_correction is not None:
            arrays.update({f"correction/{k}": np.asarray(v) for k, v in self.draft_correction.state().items()})
        if self.round.labels:
            for name, column in zip(("positions", "target_forces", "draft_forces"), zip(*self.round.labels)):
                arrays[f"labels/{name}"] = np.array(column)
        if self.lookahead_policy is not None:
            arrays.update({f"policy/{k}": np.asarray(v) for k, v in self.lookahead_policy.state().items()})
        return arrays

    def _restore_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if self.draft_correction is not None:
            self.draft_correction.restore({k.split("/", 1)[1]: v for k, v in arrays.items()
                                           if k.startswith("correction/")})
        labels = [arrays.get(f"labels/{name}") for name in ("positions", "target_forces", "draft_forces")]
        self.round.labels = [] if labels[0] is None else [tuple(row) for row in zip(*labels)]
        if self.lookahead_policy is not None:
            policy_state = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("policy/")}
            if not policy_state:
                raise ValueError("the checkpoint has no lookahead-policy state: it was written without "
                                 "adaptive lookahead, so it cannot resume an adaptive run bit for bit")
            self.lookahead_policy.restore(policy_state)

    def _sampler_state(self) -> dict[str, Any]:
        return {"round_left": self.round.left, "correction_primed": self.round.correction_primed,
                "lookahead": self.lookahead, "round_verified": self.round.verified,
                "round_accepted": self.round.accepted}

    def _restore_sampler_state(self, state: dict[str, Any]) -> None:
        if self.lookahead_policy is not None and "lookahead" in state:
            self.lookahead = self._checked_choice(int(state["lookahead"]), self.lookahead_policy)
        self.round.left = min(int(state.get("round_left", self.lookahead)), self.lookahead)
        self.round.correction_primed = bool(state.get("correction_primed", False))
        self.round.verified = int(state.get("round_verified", 0))
        self.round.accepted = int(state.get("round_accepted", 0))

    def _prepare(self, counter: StatsCounter) -> None:
        """Target energy at the start and, with a draft correction, its first label (the start positions)."""
        need_energy = self.energy is None
        need_label = self.draft_correction is not None and not self.round.correction_primed
        if self.round.slots != self.max_lookahead() + 1:
            self.round.allocate(self.max_lookahead())
        self._counter = counter
        self._streamer.reset()
        self._retries_at_start = getattr(self.executor, "retries", 0)
        if not (need_energy or need_label):
            return
        positions = self.positions[None]
        t0 = time.perf_counter()
        energies, target_forces = self.executor.evaluate(self._target, positions, role="target",
                                                         first_step=self.step)
        counter.stats.time_target_s += time.perf_counter() - t0
        counter.stats.target_calls += 1
        counter.stats.target_evaluations += 1
        self.energy = float(energies[0]) if need_energy else self.energy
        if need_label:
            t0 = time.perf_counter()
            _, draft_forces = evaluate_checked(self.draft, positions, role="draft", first_step=self.step)
            counter.stats.time_draft_s += time.perf_counter() - t0
            counter.stats.draft_calls += 1
            self.draft_correction.observe(positions, target_forces, draft_forces)
            self.round.correction_primed = True

    def _mean_shift(self, target_forces: np.ndarray, draft_forces: np.ndarray,
                    correction: np.ndarray | None) -> np.ndarray:
        """Whitened mean shifts delta = (mu_t - mu_d)/s of drafted steps, shape (K, N, 3)."""
        drift = draft_forces if correction is None else draft_forces + correction
        return (self.constants.force_factor / self.constants.noise_scale) * (target_forces - drift)

    def _repair(self, momenta: np.ndarray, target_force: np.ndarray, noise: np.ndarray,
                delta: np.ndarray) -> np.ndarray:
        """Momenta of a rejected step: mu_t + s * reflect(z), the maximal-coupling transport."""
        mean_target = momentum_mean(momenta, target_force, self.constants)
        return mean_target + self.constants.noise_scale * reflect(noise, delta)

    def draft_step(self, j: int, positions: np.ndarray, momenta: np.ndarray, step: int,
                   forces: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draft ABOBA step ``step`` into slot j of ``self.round``; returns the drafted (positions, momenta).

        The draft force is F_draft + the draft correction (frozen for the round) at the
        half-step position; the correction applied is kept per slot, so verification uses
        exactly the proposal's mean. ``forces``: raw draft forces there when already known (1, N, 3).
        """
        k = self.constants
        half = half_step_position(positions, momenta, k)
        if forces is None:
            _, forces = evaluate_checked(self.draft, half[None], role="draft", first_step=step)
        self.round.half[j] = half
        self.round.draft_forces[j] = forces[0]
        self.round.prev_momenta[j] = momenta
        if self.draft_correction is None:
            drift = forces[0]
        else:
            self.round.applied[j] = self.draft_correction.correction(half)
            drift = forces[0] + self.round.applied[j]
        noise = self.rng.normal(step, half.shape)
        self.round.noise[j] = noise
        momenta = next_momenta(momentum_mean(momenta, drift, k), noise, k)
        positions = end_position(half, momenta, k)
        self.round.new_momenta[j] = momenta
        self.round.new_positions[j] = positions
        return positions, momenta

    def couple_slot(self, j: int, step: int, target_force: np.ndarray, record_label: bool = True) -> bool:
        """Verify the step drafted in buffer slot j against the target force (N, 3) at its half-step position.

        Accept with the reflection maximal coupling (acceptance draw keyed by ``step``); on
        rejection overwrite the slot's momenta and positions with the repaired ones. The step's
        target label joins the round's labels (unless ``record_label`` is False: a bonus step,
        whose label ``draft_bonus`` already observed). Returns whether the step was accepted.
        """
        r = self.round
        applied = None if self.draft_correction is None else r.applied[j:j + 1]
        delta = self._mean_shift(target_force[None], r.draft_forces[j:j + 1], applied)
        if self.draft_correction is not None and record_label:
            r.labels.append((r.half[j].copy(), target_force.copy(), r.draft_forces[j].copy()))
        accepted = bool(self.rng.log_uniform(step) <= log_acceptance_ratio(r.noise[j:j + 1], delta)[0])
        if record_label:  # a drafted step of the round (not its bonus step)
            r.verified += 1
            r.accepted += accepted
        if accepted:
            return True
        repaired = self._repair(r.prev_momenta[j], target_force, r.noise[j], delta[0])
        r.new_momenta[j] = repaired
        r.new_positions[j] = end_position(r.half[j], repaired, self.constants)
        return False

    def end_round(self) -> None:
        """The round ended (rejection or bonus step): the correction learns from its labels and,
        with a lookahead policy, the next round's K is chosen from the finished rounds."""
        if self.draft_correction is not None and self.round.labels:
            positions, target_forces, draft_forces = (np.array(c) for c in zip(*self.round.labels))
            t0 = time.perf_counter()
            self.draft_correction.observe(positions, target_forces, draft_forces)
            if self._counter is not None:
                self._counter.stats.time_learning_s += time.perf_counter() - t0
        self.round.labels = []
        if self._counter is not None:
            self._counter.record_lookahead(self.lookahead)
        if self.lookahead_policy is not None:
            self.lookahead_policy.record_round(self.round.verified, self.round.accepted, **self.round.timing)
            self.lookahead = self._checked_choice(self.lookahead_policy.choose(), self.lookahead_policy)
        self.round.reset_counters(self.lookahead)

    def draft_bonus(self, j: int, positions: np.ndarray, momenta: np.ndarray, step: int,
                    target_force: np.ndarray) -> None:
        """Draft the bonus step into slot j once the target force at its half-step position is known.

        Its label is observed first, so the round ends and the correction learns from it before the
        bonus step is drafted (for constant EC: the residual at its own half-step position, so
        the draft mean equals the target mean); the step is then coupled like any other step, so
        its outcome never depends on where a round boundary fell.
        """
        half = half_step_position(positions, momenta, self.constants)
        _, forces = evaluate_checked(self.draft, half[None], role="draft", first_step=step)
        if self.draft_correction is not None:
            self.round.labels.append((half.copy(), target_force.copy(), forces[0].copy()))
        self.end_round()
        self.draft_step(j, positions, momenta, step, forces)

    def _advance(self, max_steps: int, counter: StatsCounter) -> StepBlock:
        try:
            if self.mode == "async":
                return self._streamer.advance(max_steps, counter)
            return self._advance_round(max_steps, counter)
        finally:
            counter.stats.retries = getattr(self.executor, "retries", 0) - self._retries_at_start

    def _advance_round(self, max_steps: int, counter: StatsCounter) -> StepBlock:
        """One synchronous round: draft, one batched target call, verify in order."""
        k = self.constants
        n_draft = min(self.round.left, max_steps)  # a round cut short by the end of run() resumes later
        bonus = max_steps > n_draft  # room for the bonus step after the round's drafted steps
        n = self.step
        stats = counter.stats
        bonus_draft_s = 0.0

        # 1. Draft n_draft steps sequentially; the bonus half-step position needs no force.
        t0 = time.perf_counter()
        positions, momenta = self.positions, self.momenta
        for j in range(n_draft):
            positions, momenta = self.draft_step(j, positions, momenta, n + j + 1)
        n_eval = n_draft + 1 if bonus else n_draft
        if bonus:
            self.round.half[n_draft] = half_step_position(positions, momenta, k)
        t1 = time.perf_counter()
        stats.time_draft_s += t1 - t0
        stats.draft_calls += n_draft

        # 2. One batched target call on all half-step positions.
        energies, target_forces = self.executor.evaluate(self._target, self.round.half[:n_eval], role="target",
                                                         first_step=n + 1)
        t2 = time.perf_counter()
        stats.time_target_s += t2 - t1
        stats.target_calls += 1
        stats.target_evaluations += n_eval
        self.round.timing = {"draft_seconds": t1 - t0, "drafted_steps": n_draft, "target_seconds": t2 - t1,
                              "batch_size": n_eval}

        # 3. Verify in order with the coupling; stop at the first rejection (repaired in its slot).
        n_accepted = n_draft
        for j in range(n_draft):
            if not self.couple_slot(j, n + j + 1, target_forces[j]):
                n_accepted = j
                break
        counter.record_round(min(n_accepted + 1, n_draft), n_accepted)
        stats.accepted_steps += n_accepted
        last = n_accepted  # buffer slot of the step that ends the round
        if n_accepted < n_draft:
            stats.repaired_steps += 1
            kinds = np.full(n_accepted + 1, StepKind.ACCEPTED, dtype=np.int8)
            kinds[-1] = StepKind.REPAIRED
        elif bonus:
            # Bonus step: its target force is already known; draft it now and couple it.
            t_bonus = time.perf_counter()
            self.draft_bonus(last, positions, momenta, n + last + 1, target_forces[last])
            stats.draft_calls += 1
            bonus_draft_s = time.perf_counter() - t_bonus
            stats.time_draft_s += bonus_draft_s
            self.couple_slot(last, n + last + 1, target_forces[last], record_label=False)
            stats.target_steps += 1
            kinds = np.full(n_accepted + 1, StepKind.ACCEPTED, dtype=np.int8)
            kinds[-1] = StepKind.TARGET
        else:
            last = n_draft - 1
            kinds = np.full(n_accepted, StepKind.ACCEPTED, dtype=np.int8)
        n_new = last + 1
        stats.time_verification_s += time.perf_counter() - t2 - bonus_draft_s

        # 4. A rejection ends the round (the correction learns from its labels; the bonus step
        # already did that); a round cut short by the end of run() continues in the next call.
        if n_accepted < n_draft:
            self.end_round()
        elif not bonus:
            self.round.left -= n_draft
        return StepBlock(self.round.new_positions[:n_new].copy(), self.round.new_momenta[:n_new].copy(),
                         energies[:n_new].copy(), kinds)
