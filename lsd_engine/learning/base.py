"""Shared machinery of the learned draft corrections.

Every learned correction here follows the same contract (``lsd_engine.corrections.DraftCorrection``):

- ``observe(positions, target_forces, draft_forces)`` is the only way information
  enters. It is called between rounds with the round's on-trajectory labels in step
  order; the last one is the *reference* x_ref where the next round starts.
- ``correction(x)`` is a pure function of ``x`` and of the state left by the last
  ``observe``: it never changes the object, so a round drafted with it uses one fixed
  draft, and verification can recompute the same corrected mean.
- ``state()`` / ``restore()`` round-trip everything (arrays only) bit for bit.

Anchoring: with ``anchor=True`` (the default) a learned model m(x) of the residual
r = F_target - F_draft is used as
    g(x) = r(x_ref) + m(x) - m(x_ref),
so g is exact at x_ref (like the seed paper's constant EC, which is the case m = 0)
and m only has to get the *change* of the residual over a round right.

Trust region: the change m(x) - m(x_ref) is clipped per atom to ``max_change_eV_per_A``
(default 3 eV/Å, several times a typical draft error), so a model fitted on a handful
of labels cannot throw a draft far off before it has learned (an unbounded polynomial
once sent a K = 16 draft to NaN within 30 steps). The clip is a fixed function of x and
of past labels, so exactness is untouched; it only bounds how wrong the draft can get.

Validation gate: each round's new labels are first scored, out of sample, against the
correction the round was drafted with and against plain constant EC (r(x_ref)); the
model is used only while its exponentially averaged squared error (memory
``gate_memory`` per round) is below constant EC's. So a model still learning (few
labels, early rounds) or one that cannot represent the residual falls back to the
seed paper's EC instead of making the draft worse. Up to ``gate_labels`` labels per
round are scored (evenly spaced, the deepest included).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LearnedCorrection", "LabelBuffer", "check_labels"]


def check_labels(positions: np.ndarray, target_forces: np.ndarray, draft_forces: np.ndarray,
                 n_atoms: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated (positions (B, N, 3), residuals (B, N, 3)) as float64 copies."""
    x = np.array(positions, dtype=float)
    ft = np.asarray(target_forces, dtype=float)
    fd = np.asarray(draft_forces, dtype=float)
    if x.ndim == 2:
        x, ft, fd = x[None], ft[None], fd[None]
    if x.ndim != 3 or x.shape[-1] != 3 or ft.shape != x.shape or fd.shape != x.shape:
        raise ValueError(f"observe needs positions, target and draft forces of one shape (B, N, 3); got "
                         f"{np.shape(positions)}, {np.shape(target_forces)}, {np.shape(draft_forces)}")
    if n_atoms is not None and x.shape[1] != n_atoms:
        raise ValueError(f"this correction is bound to {n_atoms} atoms, got labels for {x.shape[1]}")
    if x.shape[0] == 0:
        raise ValueError("observe needs at least one label")
    r = ft - fd
    if not (np.isfinite(x).all() and np.isfinite(r).all()):
        raise ValueError("observe got non-finite positions or forces")
    return x, r


class LabelBuffer:
    """A ring buffer of the most recent labels (positions and residuals), oldest first."""

    def __init__(self, capacity: int, n_atoms: int):
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.positions = np.zeros((self.capacity, n_atoms, 3))
        self.residuals = np.zeros((self.capacity, n_atoms, 3))
        self.count = 0  # labels ever added
        self.size = 0

    def add(self, positions: np.ndarray, residuals: np.ndarray) -> None:
        b = positions.shape[0]
        if b >= self.capacity:
            self.positions[:] = positions[-self.capacity:]
            self.residuals[:] = residuals[-self.capacity:]
            self.size = self.capacity
        else:
            keep = min(self.size, self.capacity - b)
            self.positions[:keep] = self.positions[self.size - keep:self.size]
            self.residuals[:keep] = self.residuals[self.size - keep:self.size]
            self.positions[keep:keep + b] = positions
            self.residuals[keep:keep + b] = residuals
            self.size = keep + b
        self.count += b

    def recent(self) -> tuple[np.ndarray, np.ndarray]:
        return self.positions[:self.size], self.residuals[:self.size]

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}positions": self.positions[:self.size].copy(),
                f"{prefix}residuals": self.residuals[:self.size].copy(),
                f"{prefix}count": np.array(self.count)}

    def restore(self, state: dict[str, Any], prefix: str) -> None:
        x = np.asarray(state[f"{prefix}positions"], dtype=float)
        self.size = x.shape[0]
        self.positions[:self.size] = x
        self.residuals[:self.size] = np.asarray(state[f"{prefix}residuals"], dtype=float)
        self.count = int(state[f"{prefix}count"])


class LearnedCorrection:
    """Base class: anchoring, label checks, state plumbing. Subclasses implement

    ``_learn(positions, residuals)``: update the model from new labels (B, N, 3), in order;
    ``_model(x)``: the model's residual force m(x) (N, 3), or None while it has no fit;
    ``_state()`` / ``_restore(state)``: the subclass's own arrays.
    """

    name = "learned"
    max_change_eV_per_A: float = 3.0  # per-atom bound on m(x) - m(x_ref) (the trust region)
    gate: bool = True  # use the model only while it beats constant EC on fresh labels
    gate_memory: float = 0.9  # weight kept per round by the gate's error averages
    gate_labels: int = 4  # labels per round the gate scores

    def __init__(self, n_atoms: int, anchor: bool = True):
        self.n_atoms = int(n_atoms)
        self.anchor = bool(anchor)
        self._x_ref: np.ndarray | None = None
        self._r_ref: np.ndarray | None = None
        self._m_ref: np.ndarray | None = None
        self.n_labels = 0
        self._gate_errors = np.zeros(2)  # averaged squared error of (model, constant EC) on fresh labels

    @property
    def uses_model(self) -> bool:
        """Whether ``correction`` currently adds the model's change (gate open) or is constant EC."""
        if self._m_ref is None:
            return False
        return not self.gate or bool(self._gate_errors[0] < self._gate_errors[1])

    @property
    def ready(self) -> bool:
        return self._r_ref is not None

    @property
    def reference_residual(self) -> np.ndarray | None:
        """The residual (target - draft forces, (N, 3) eV/Å) of the newest label, which the correction is
        anchored to; None before the first label. A read-only view: copy it to change it."""
        if self._r_ref is None:
            return None
        view = self._r_ref.view()
        view.flags.writeable = False
        return view

    # -- the DraftCorrection protocol ------------------------------------------------
    def correction(self, positions: np.ndarray) -> np.ndarray:
        x = np.asarray(positions, dtype=float)
        if self._r_ref is None:
            return np.zeros_like(x)
        if not self.uses_model:  # no model fitted yet, or the gate prefers constant EC
            return self._r_ref.copy()
        return self._modelled(x)

    def _modelled(self, x: np.ndarray) -> np.ndarray:
        """The model's correction (anchored and clipped), whatever the gate says."""
        m = self._model(x)
        if not self.anchor:
            return m
        change = m - self._m_ref
        norm = np.sqrt(np.einsum("...i,...i->...", change, change))[..., None]
        limit = self.max_change_eV_per_A
        return self._r_ref + change * (limit / np.maximum(norm, limit))  # scale 1 inside the region

    def observe(self, positions: np.ndarray, target_forces: np.ndarray, draft_forces: np.ndarray) -> None:
        x, r = check_labels(positions, target_forces, draft_forces, self.n_atoms)
        if self.gate and self._m_ref is not None:
            self._score(x, r)
        self._learn(x, r)
        self.n_labels += x.shape[0]
        self._x_ref, self._r_ref = x[-1].copy(), r[-1].copy()
        self._m_ref = self._model(self._x_ref)

    def _score(self, x: np.ndarray, r: np.ndarray) -> None:
        """Update the gate with the new labels, scored before the model learns from them."""
        picks = np.unique(np.linspace(0, x.shape[0] - 1, min(x.shape[0], self.gate_labels)).round().astype(int))
        errors = np.zeros(2)
        for k in picks:
            errors[0] += np.sum((r[k] - self._modelled(x[k])) ** 2)
            errors[1] += np.sum((r[k] - self._r_ref) ** 2)
        self._gate_errors = self.gate_memory * self._gate_errors + errors / picks.size

    def state(self) -> dict[str, np.ndarray]:
        out = {"n_labels": np.array(self.n_labels), "gate_errors": self._gate_errors.copy()}
        if self._x_ref is not None:
            out["x_ref"], out["r_ref"] = self._x_ref.copy(), self._r_ref.copy()
        for key, value in self._state().items():
            out[f"m_{key}"] = np.array(value)
        return out

    def restore(self, state: dict[str, Any]) -> None:
        self.n_labels = int(state.get("n_labels", 0))
        self._gate_errors = np.array(state.get("gate_errors", np.zeros(2)), dtype=float)
        own = {key[2:]: np.asarray(value) for key, value in state.items() if key.startswith("m_")}
        self._restore(own)
        if "x_ref" in state:
            self._x_ref = np.array(state["x_ref"], dtype=float)
            self._r_ref = np.array(state["r_ref"], dtype=float)
            self._m_ref = self._model(self._x_ref)
        else:
            self._x_ref = self._r_ref = self._m_ref = None

    # -- for subclasses ----------------------------------------------------------------
    def _learn(self, positions: np.ndarray, residuals: np.ndarray) -> None:
        raise NotImplementedError

    def _model(self, positions: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        pass
