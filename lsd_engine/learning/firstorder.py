"""First-order draft correction: g(x) = r(x_ref) + J (x - x_ref), J from recent labels.

J is never formed. For each atom i, the residual change r_i(x_l) - r_i(x_ref) over the
last ``window`` labels is ridge-regressed on the displacements x_l - x_ref of the atoms
within ``cutoff`` of i (all atoms with ``cutoff=None``). In the dual (kernel) form that
is one M x M solve per atom per round (M = window - 1) and O(M N) work per call:

    K_i[l, m] = sum_j A_ij (x_l - x_ref)_j . (x_m - x_ref)_j,   A_ij = 1 if |x_i - x_j| < cutoff
    alpha_i   = (K_i + lambda_i W^-1)^-1 (R_i - r_i(x_ref))      (M x 3)
    g_i(x)    = r_i(x_ref) + sum_l alpha_il sum_j A_ij (x_l - x_ref)_j . (x - x_ref)_j

lambda_i = ridge * trace(K_i) / M keeps the fit scale-free; W weights labels by age
(``decay`` per step). Along a Langevin trajectory the displacements of the next few
steps lie mostly in the span of the last few, which is where this J is accurate;
outside that span the ridge shrinks it to zero, i.e. back to constant EC.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .base import LabelBuffer, LearnedCorrection
from .geometry import build_pairs

__all__ = ["FirstOrderCorrection"]


class FirstOrderCorrection(LearnedCorrection):
    """Constant EC plus a first-order term whose Jacobian is fitted to the last ``window`` labels.

    n_atoms, cell, pbc: the system. window: labels kept (the reference included).
    cutoff: neighbourhood radius in Å for the per-atom Jacobian blocks (None: dense J).
    ridge: relative ridge strength. decay: weight factor per step of label age (1: equal).
    prior: another learned correction (e.g. ``RadialCorrection``) observed first; J then
    fits what the prior's change m(x) - m(x_ref) leaves over, and g adds both.
    """

    name = "first-order"

    def __init__(self, n_atoms: int, cell=None, pbc=None, window: int = 24, cutoff: float | None = None,
                 ridge: float = 1e-2, decay: float = 1.0, prior: LearnedCorrection | None = None):
        super().__init__(n_atoms, anchor=True)
        self.prior = prior
        if window < 2:
            raise ValueError(f"window must be >= 2 (the reference and one more label), got {window}")
        self.cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=float)
        self.pbc = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
        self.window, self.cutoff, self.ridge, self.decay = int(window), cutoff, float(ridge), float(decay)
        self.buffer = LabelBuffer(self.window, self.n_atoms)
        self._fit: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _adjacency(self, ref: np.ndarray):
        """A_ij = 1 for atoms within the cutoff (and i = j): dense without a cutoff, else sparse."""
        n = self.n_atoms
        if self.cutoff is None:
            return np.ones((n, n))
        pairs = build_pairs(ref, self.cell, self.pbc, self.cutoff)
        rows = np.concatenate([np.arange(n), pairs.i, pairs.j])
        cols = np.concatenate([np.arange(n), pairs.j, pairs.i])
        a = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
        a.data[:] = 1.0  # periodic images of one pair count once
        return a

    def _refit(self) -> None:
        x, r = self.buffer.recent()
        if x.shape[0] < 2:
            self._fit = None
            return
        ref = x[-1]
        dx, dr = x[:-1] - ref, r[:-1] - r[-1]  # (M, N, 3)
        if self.prior is not None and self.prior.ready:  # fit what the prior model leaves over
            prior = np.array([self.prior.correction(xl) for xl in x])
            dr = dr - (prior[:-1] - prior[-1])
        m = dx.shape[0]
        adjacency = self._adjacency(ref)
        per_atom = np.einsum("ljc,mjc->jlm", dx, dx)  # (N, M, M)
        kernel = np.asarray(adjacency @ per_atom.reshape(self.n_atoms, m * m)).reshape(self.n_atoms, m, m)
        scale = np.trace(kernel, axis1=1, axis2=2) / m
        ages = np.arange(m, 0, -1, dtype=float)  # label l is (m - l) labels older than the reference
        inv_weight = self.decay ** (-(ages - 1.0))
        lam = self.ridge * np.maximum(scale, 1e-300)
        kernel = kernel + lam[:, None, None] * np.diag(inv_weight)[None]
        alpha = np.linalg.solve(kernel, dr.transpose(1, 0, 2))  # (N, M, 3)
        self._fit = (ref, dx, adjacency, alpha)

    def _learn(self, positions: np.ndarray, residuals: np.ndarray) -> None:
        if self.prior is not None:
            self.prior.observe(positions, residuals, np.zeros_like(residuals))
        self.buffer.add(positions, residuals)
        self._refit()

    def _model(self, positions: np.ndarray) -> np.ndarray | None:
        prior = None
        if self.prior is not None and self.prior.ready:
            prior = self.prior.correction(positions) - self.prior.reference_residual
        if self._fit is None:
            return prior
        ref, dx, adjacency, alpha = self._fit
        projections = np.einsum("ljc,jc->lj", dx, positions - ref)  # (M, N)
        k = np.asarray(adjacency @ projections.T).T  # k[l, i] = sum_j A_ij projections[l, j]
        out = np.einsum("li,ilc->ic", k, alpha)
        return out if prior is None else out + prior

    def _state(self) -> dict[str, np.ndarray]:
        out = self.buffer.state("buffer_")
        if self.prior is not None:
            out.update({f"prior.{k}": v for k, v in self.prior.state().items()})
        return out

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        if self.prior is not None:
            self.prior.restore({k[6:]: v for k, v in state.items() if k.startswith("prior.")})
        self.buffer = LabelBuffer(self.window, self.n_atoms)
        if "buffer_positions" in state:
            self.buffer.restore(state, "buffer_")
        self._refit()
