"""Linear-in-parameters energy corrections: a force-field refit to the target, online.

The residual energy U_target - U_draft is modelled as a sum of terms that are linear
in their coefficients c,

    ΔU(x) = sum_k c_k phi_k(pair distances of x),

so the correction force m(x) = -∇ΔU = G(x) c is linear in c and the fit is ridge
regression on the verified labels, weighted by 1/m_i (the whitened force error that
the acceptance depends on), with exponential forgetting. Between rounds the normal
equations get the new labels and c is refined by a few warm-started preconditioned
conjugate-gradient iterations (deterministic: fixed iteration count and order).

Two term families:

- ``BondedCorrection`` (molecules; the refit of the classical force field): for every
  pair of atoms 1..``separation`` covalent bonds apart, a polynomial in its stretch
  t = (r - r0)/w (degree ``degree``; r0 from the first label), plus couplings
  t_a t_b for pairs a, b sharing an atom whose separations are <= ``cross_separation``
  (class-II bond-bond / bond-angle cross terms). Parameters are per pair: the molecule
  keeps its topology.
- ``RadialCorrection`` (materials; atoms move between sites): a pair potential per
  species pair on smooth radial basis functions within ``cutoff``, plus an EAM-like
  embedding sum_i h_q(rho_i), rho_i = sum_j exp(-beta (r_ij - r_nn)) f_c(r_ij).

Both are used anchored: g(x) = r(x_ref) + m(x) - m(x_ref) (see ``base``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from scipy.linalg import blas

from .base import LearnedCorrection
from ._threads import single_threaded_blas
from .geometry import PairList, build_pairs, covalent_graph_pairs, species_pair_index

__all__ = ["LinearEnergyCorrection", "BondedCorrection", "RadialCorrection"]


class LinearEnergyCorrection(LearnedCorrection):
    """Base: pair-distance energy terms, linear in their coefficients, fitted online.

    Subclasses define ``n_params``, ``setup(x0)`` (fixed at the first label),
    ``_pairs(x)`` (the pairs for a configuration, or for a whole round) and
    ``_derivatives(pairs, r, x)`` -> D, a (P, n_params) matrix (sparse or dense) of
    dΔU/dr_p per unit coefficient, so that m(x) = -U(x) D c with U the pair-direction
    incidence (3N, P); optionally a faster ``_dudr(pairs, r, x, coef)`` = D c.

    ridge: relative ridge strength (times the mean diagonal of the normal matrix).
    forgetting: weight kept per label of age (1: never forget). cg_iterations:
    warm-started preconditioned CG steps per solve. fit_stride: only labels whose index
    is a multiple of it enter the fit (successive labels are nearly collinear).
    solve_every: refine c when the label count crosses a multiple of this (1: every
    ``observe``); the normal equations still take every chosen label.
    """

    name = "linear-energy"
    n_params: int = 0

    def __init__(self, n_atoms: int, masses: np.ndarray, ridge: float = 1e-6, forgetting: float = 0.9995,
                 cg_iterations: int = 12, fit_stride: int = 1, solve_every: int = 1, anchor: bool = True):
        super().__init__(n_atoms, anchor=anchor)
        self.masses = np.asarray(masses, dtype=float)
        self.weights = np.repeat(1.0 / self.masses, 3)  # per Cartesian row
        self.ridge, self.forgetting, self.cg_iterations = float(ridge), float(forgetting), int(cg_iterations)
        self.fit_stride = max(1, int(fit_stride))
        self.solve_every = max(1, int(solve_every))
        self.x0: np.ndarray | None = None
        self.normal: np.ndarray | None = None
        self.rhs: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self._round_pairs: PairList | None = None

    # -- to implement --------------------------------------------------------------------
    def setup(self, x0: np.ndarray) -> None:
        """Fix the terms at the reference geometry x0 (N, 3) Å: at the first label, or when a saved
        model (``lsd_engine.learning.distill``) is rebuilt."""
        raise NotImplementedError

    def _pairs(self, positions: np.ndarray) -> PairList:
        raise NotImplementedError

    def _derivatives(self, pairs: PairList, r: np.ndarray, positions: np.ndarray):
        raise NotImplementedError

    def _dudr(self, pairs: PairList, r: np.ndarray, positions: np.ndarray, coef: np.ndarray) -> np.ndarray:
        return np.asarray(self._derivatives(pairs, r, positions) @ coef).reshape(-1)

    # -- features ------------------------------------------------------------------------
    @staticmethod
    def _geometry(pairs: PairList, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vec = pairs.vectors(positions)
        return vec, np.sqrt(np.einsum("pc,pc->p", vec, vec))

    def _incidence(self, pairs: PairList, unit: np.ndarray, dense: bool):
        """U (3N, P): column p is +u_p on atom j and -u_p on atom i (u_p from i to j)."""
        p = len(pairs)
        rows = np.concatenate([3 * pairs.j[:, None] + np.arange(3), 3 * pairs.i[:, None] + np.arange(3)]).ravel()
        cols = np.tile(np.repeat(np.arange(p), 3), 2)
        vals = np.concatenate([unit.ravel(), -unit.ravel()])
        if dense:  # each (row, column) occurs once (a pair's two atoms differ): assignment, no add.at
            u = np.zeros((3 * self.n_atoms, p))
            u[rows, cols] = vals
            return u
        return sparse.csr_matrix((vals, (rows, cols)), shape=(3 * self.n_atoms, p))

    def design(self, positions: np.ndarray, pairs: PairList | None = None) -> np.ndarray:
        """G (3N, n_params) with m(x) = G c at one configuration (N, 3); dense."""
        pairs = self._pairs(positions) if pairs is None else pairs
        vec, r = self._geometry(pairs, positions)
        d = self._derivatives(pairs, r, positions)
        d = d.toarray() if sparse.issparse(d) else d
        return -np.asarray(self._incidence(pairs, vec / r[:, None], dense=False) @ d)

    def _energy(self, pairs: PairList, r: np.ndarray, positions: np.ndarray, coef: np.ndarray) -> float:
        raise NotImplementedError

    def model_energy(self, positions: np.ndarray, coef: np.ndarray, pairs: PairList | None = None) -> float:
        """ΔU(x) in eV (up to a constant) for coefficients ``coef``."""
        pairs = self._pairs(positions) if pairs is None else pairs
        _, r = self._geometry(pairs, positions)
        return float(self._energy(pairs, r, positions, coef))

    def model_forces(self, positions: np.ndarray, coef: np.ndarray, pairs: PairList | None = None) -> np.ndarray:
        pairs = self._pairs(positions) if pairs is None else pairs
        vec, r = self._geometry(pairs, positions)
        dudr = self._dudr(pairs, r, positions, coef)
        return -pairs.scatter((dudr / r)[:, None] * vec)

    # -- learning ------------------------------------------------------------------------
    def _accumulate_one(self, x: np.ndarray, residual: np.ndarray, pairs: PairList, weight: float) -> None:
        vec, r = self._geometry(pairs, x)
        d = self._derivatives(pairs, r, x)
        w = self.weights * weight
        if self.n_params <= 3 * self.n_atoms or not sparse.issparse(d):
            dd = d.toarray() if sparse.issparse(d) else d
            g = -np.asarray(self._incidence(pairs, vec / r[:, None], dense=False) @ dd)  # (3N, n_params)
            gw = g * w[:, None]
            self.normal += g.T @ gw
            self.rhs += gw.T @ residual.reshape(-1)
        else:  # many parameters, few pairs: A += D^T (U^T W U) D with sparse D
            u = self._incidence(pairs, vec / r[:, None], dense=True)
            uw = u * w[:, None]
            m = u.T @ uw  # (P, P)
            dt = d.T.tocsr()
            dtm = np.asarray(dt @ m)  # (n_params, P)
            self.normal += np.asarray(dt @ dtm.T).T
            self.rhs += -(dt @ (uw.T @ residual.reshape(-1)))

    def _accumulate(self, positions: np.ndarray, residuals: np.ndarray, pairs: PairList) -> None:
        """Add the labels (one round's, within a pair list's skin of each other) to the normal equations."""
        b = positions.shape[0]
        index = self.n_labels + np.arange(b)
        chosen = np.flatnonzero(index % self.fit_stride == 0)
        self.normal *= self.forgetting ** b
        self.rhs *= self.forgetting ** b
        if chosen.size == 0:
            return
        for k in chosen:
            self._accumulate_one(positions[k], residuals[k], pairs, self.forgetting ** (b - 1 - k))

    def _full_normal(self) -> np.ndarray:
        """The normal matrix A as the solves use it (a subclass may keep only a triangle)."""
        return self.normal

    def _stored_normal(self, saved: np.ndarray) -> np.ndarray:
        """A saved normal matrix as this class keeps it (see ``_full_normal``)."""
        return saved

    def _preconditioner(self, a: np.ndarray, lam: float):
        """Block-Jacobi: exact inverses of the diagonal blocks ``self.blocks`` (an (n_blocks, size)
        index array, e.g. one pair's polynomial coefficients), plain Jacobi elsewhere."""
        diag = np.diag(a) + lam
        blocks = getattr(self, "blocks", None)
        if blocks is None or blocks.size == 0:
            return lambda r: r / diag
        sub = a[blocks[:, :, None], blocks[:, None, :]] + lam * np.eye(blocks.shape[1])
        inverse = np.linalg.inv(sub)
        in_blocks = np.zeros(a.shape[0], dtype=bool)
        in_blocks[blocks.ravel()] = True

        def apply(r: np.ndarray) -> np.ndarray:
            z = r / diag
            z[blocks] = np.einsum("bij,bj->bi", inverse, r[blocks])
            return z

        return apply

    def _solve(self) -> None:
        """Warm-started block-preconditioned conjugate gradient on (A + lam I) c = b."""
        a, b = self._full_normal(), self.rhs
        lam = self.ridge * max(float(np.diag(a).mean()), 1e-300)
        precondition = self._preconditioner(a, lam)
        x = np.zeros_like(b) if self.coef is None else self.coef.copy()
        r = b - (a @ x + lam * x)
        z = precondition(r)
        p = z.copy()
        rz = float(r @ z)
        for _ in range(self.cg_iterations):
            if rz <= 0.0:
                break
            ap = a @ p + lam * p
            pap = float(p @ ap)
            if pap <= 0.0:
                break
            alpha = rz / pap
            x += alpha * p
            r -= alpha * ap
            z = precondition(r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p
            rz = rz_new
        self.coef = x

    def fit(self, positions: np.ndarray, residuals: np.ndarray, batch: int = 64) -> np.ndarray:
        """Offline fit on all labels at once (no forgetting, exact Cholesky solve); returns c.

        Used by ``lsd_engine.distill``. Leaves the object ready as a fixed model m(x) = G(x) c.
        """
        x = np.asarray(positions, dtype=float)
        r = np.asarray(residuals, dtype=float)
        with single_threaded_blas():
            self.x0 = x[0].copy()
            self.setup(self.x0)
            self.normal = np.zeros((self.n_params, self.n_params))
            self.rhs = np.zeros(self.n_params)
            for k in range(x.shape[0]):
                if k % self.fit_stride == 0:
                    self._accumulate_one(x[k], r[k], self._pairs(x[k]), 1.0)
            normal = self._full_normal()
            lam = self.ridge * max(float(np.diag(normal).mean()), 1e-300)
            from scipy.linalg import cho_factor, cho_solve

            self.coef = cho_solve(cho_factor(normal + lam * np.eye(self.n_params)), self.rhs)
        return self.coef

    def _learn(self, positions: np.ndarray, residuals: np.ndarray) -> None:
        with single_threaded_blas():
            if self.x0 is None:
                self.x0 = positions[0].copy()
                self.setup(self.x0)
                self.normal = np.zeros((self.n_params, self.n_params))
                self.rhs = np.zeros(self.n_params)
            self._round_pairs = self._pairs(positions[-1])  # the next round's pairs, also used for the fit
            self._accumulate(positions, residuals, self._round_pairs)
            before, after = self.n_labels, self.n_labels + positions.shape[0]
            due = self.coef is None or after // self.solve_every > before // self.solve_every
            if due and np.any(self.rhs):
                self._solve()

    def _model(self, positions: np.ndarray) -> np.ndarray | None:
        if self.coef is None:
            return None
        return self.model_forces(positions, self.coef, self._round_pairs)

    def _state(self) -> dict[str, np.ndarray]:
        if self.x0 is None:
            return {}
        out = {"x0": self.x0, "normal": self.normal, "rhs": self.rhs}
        if self.coef is not None:
            out["coef"] = self.coef
        return out

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self._round_pairs = None
        if "x0" not in state:
            self.x0 = self.normal = self.rhs = self.coef = None
            return
        self.x0 = np.array(state["x0"], dtype=float)
        self.setup(self.x0)
        self.normal = self._stored_normal(np.array(state["normal"], dtype=float))
        self.rhs = np.array(state["rhs"], dtype=float)
        self.coef = np.array(state["coef"], dtype=float) if "coef" in state else None

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        if self._x_ref is not None and self.x0 is not None:
            self._round_pairs = self._pairs(self._x_ref)
            self._m_ref = self._model(self._x_ref)


class BondedCorrection(LinearEnergyCorrection):
    """Per-pair polynomials in the stretch of 1-2 .. 1-``separation`` pairs plus cross terms
    of pairs sharing an atom (see module doc). For molecules (non-periodic).

    Bonds are found at the first label: distance < bond_scale * (sum of covalent radii).
    degree: polynomial degree of each pair's force in its stretch t = (r - r0)/width.
    """

    name = "bonded"

    def __init__(self, numbers: np.ndarray, masses: np.ndarray, separation: int = 3, degree: int = 4,
                 cross_separation: int = 2, width: float = 0.1, bond_scale: float = 1.15, **kwargs: Any):
        numbers = np.asarray(numbers)
        super().__init__(numbers.size, masses, **kwargs)
        self.numbers = numbers
        self.bond_scale = float(bond_scale)
        self.separation, self.degree = int(separation), int(degree)
        self.cross_separation, self.width = int(cross_separation), float(width)

    def setup(self, x0: np.ndarray) -> None:
        pairs, hops = covalent_graph_pairs(x0, self.numbers, self.separation, self.bond_scale)
        self.pair_list = pairs
        self.r0 = np.linalg.norm(pairs.vectors(x0), axis=1)
        cand = np.flatnonzero(hops <= self.cross_separation)
        atoms = np.stack([pairs.i[cand], pairs.j[cand]], axis=1)
        a_idx, b_idx = np.triu_indices(cand.size, 1)
        share = ((atoms[a_idx, 0] == atoms[b_idx, 0]) | (atoms[a_idx, 0] == atoms[b_idx, 1])
                 | (atoms[a_idx, 1] == atoms[b_idx, 0]) | (atoms[a_idx, 1] == atoms[b_idx, 1]))
        self.cross = np.stack([cand[a_idx[share]], cand[b_idx[share]]], axis=1)
        p = len(pairs)
        self.n_params = p * self.degree + len(self.cross)
        self.blocks = np.arange(p * self.degree).reshape(p, self.degree)  # one pair's polynomial
        # fixed sparsity pattern of D: diagonal polynomial blocks, then two entries per cross term
        c = len(self.cross)
        self._rows = np.concatenate([np.repeat(np.arange(p), self.degree), self.cross[:, 0], self.cross[:, 1]])
        self._cols = np.concatenate([np.arange(p * self.degree), p * self.degree + np.arange(c),
                                     p * self.degree + np.arange(c)])

    def _pairs(self, positions: np.ndarray) -> PairList:
        return self.pair_list

    def _column_values(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """D's entries by column: every column has v1 in row ``_rows[:n_params]`` (its pair, or a cross
        term's first pair); a cross term's column also has v2 in row ``cross[:, 1]``."""
        t = (r - self.r0) / self.width
        powers = t[:, None] ** np.arange(self.degree)  # d/dt of t^(d+1)/(d+1)
        v1 = np.concatenate([powers.ravel(), t[self.cross[:, 1]]]) / self.width
        return v1, t[self.cross[:, 0]] / self.width

    def _accumulate_one(self, x: np.ndarray, residual: np.ndarray, pairs: PairList, weight: float) -> None:
        """A += G^T W G and b += G^T W r with G = -U D (3N, n_params) built from D's fixed pattern (every
        column has one entry, a pair's polynomial, or two, a cross term): one symmetric rank-3N BLAS
        update (dsyrk) of A's lower triangle in place (the upper one stays zero); :meth:`_full_normal`
        mirrors it for the solves."""
        if self.n_params == 0:  # no covalent pairs (e.g. a loose cluster): nothing to fit
            return
        vec, r = self._geometry(pairs, x)
        u = self._incidence(pairs, vec / r[:, None], dense=True)  # (3N, P)
        v1, v2 = self._column_values(r)
        first_cross = len(pairs) * self.degree
        g = u[:, self._rows[:self.n_params]] * -v1  # G = -U D
        g[:, first_cross:] -= u[:, self.cross[:, 1]] * v2
        w = self.weights * weight
        self.rhs += g.T @ (w * residual.reshape(-1))
        scaled = np.asfortranarray(g * np.sqrt(w)[:, None])
        if not self.normal.flags.c_contiguous:  # else BLAS would update a copy, and the label would be lost
            self.normal = np.ascontiguousarray(self.normal)
        # the lower triangle of A (the upper one of its Fortran-ordered transpose), in place
        blas.dsyrk(1.0, scaled, beta=1.0, c=self.normal.T, trans=1, overwrite_c=True)

    def _full_normal(self) -> np.ndarray:
        """A from its lower triangle (the upper one is kept zero: see ``_accumulate_one`` and ``_restore``)."""
        a = self.normal + self.normal.T
        np.fill_diagonal(a, np.diag(self.normal))
        return a

    def _stored_normal(self, saved: np.ndarray) -> np.ndarray:
        """A saved normal matrix as this class keeps it: its lower triangle (an older checkpoint has all of it)."""
        return np.tril(saved)

    def _dudr(self, pairs: PairList, r: np.ndarray, positions: np.ndarray, coef: np.ndarray) -> np.ndarray:
        p = len(pairs)
        t = (r - self.r0) / self.width
        poly = coef[:p * self.degree].reshape(p, self.degree)
        out = poly[:, -1].copy()
        for d in range(self.degree - 2, -1, -1):  # Horner
            out = out * t + poly[:, d]
        cross = coef[p * self.degree:]
        out += np.bincount(self.cross[:, 0], cross * t[self.cross[:, 1]], p)
        out += np.bincount(self.cross[:, 1], cross * t[self.cross[:, 0]], p)
        return out / self.width

    def _energy(self, pairs: PairList, r: np.ndarray, positions: np.ndarray, coef: np.ndarray) -> float:
        p = len(pairs)
        t = (r - self.r0) / self.width
        poly = coef[:p * self.degree].reshape(p, self.degree)
        powers = t[:, None] ** np.arange(1, self.degree + 1) / np.arange(1, self.degree + 1)
        cross = coef[p * self.degree:]
        return float(np.sum(poly * powers) + np.sum(cross * t[self.cross[:, 0]] * t[self.cross[:, 1]]))


    def _derivatives(self, pairs: PairList, r: np.ndarray, positions: np.ndarray) -> sparse.csr_matrix:
        vals = np.concatenate(self._column_values(r))  # in the order of _rows / _cols
        return sparse.csr_matrix((vals, (self._rows, self._cols)), shape=(len(pairs), self.n_params))


class RadialCorrection(LinearEnergyCorrection):
    """Species-pair radial pair potential plus EAM-like embedding terms (see module doc).

    cutoff: Å; n_radial: Gaussian basis functions on [r_min, cutoff]; embedding: the
    exponents q of h_q(rho) = rho^q (empty: pair terms only); skin: Verlet skin (Å) of
    the pair list built at each round's reference.
    """

    name = "radial"

    def __init__(self, numbers: np.ndarray, masses: np.ndarray, cell=None, pbc=None, cutoff: float = 5.0,
                 n_radial: int = 12, r_min: float = 1.8, embedding: tuple[float, ...] = (0.5, 2.0),
                 skin: float = 1.0, **kwargs: Any):
        numbers = np.asarray(numbers)
        super().__init__(numbers.size, masses, **kwargs)
        self.numbers = numbers
        self.cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=float)
        self.pbc = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
        self.cutoff, self.n_radial, self.r_min = float(cutoff), int(n_radial), float(r_min)
        self.embedding, self.skin = tuple(float(q) for q in embedding), float(skin)
        species = np.unique(numbers)
        self.species_index = np.searchsorted(species, numbers)
        s = species.size
        self.pair_key, self.n_keys, self.n_species = species_pair_index(s), s * (s + 1) // 2, s
        self.mu = np.linspace(self.r_min, self.cutoff, self.n_radial)
        self.sigma = (self.cutoff - self.r_min) / (self.n_radial - 1)
        self.n_params = self.n_keys * self.n_radial + self.n_species * len(self.embedding)
        self.r_nn = 2.5
        self.beta = 2.0

    def setup(self, x0: np.ndarray) -> None:
        pairs = build_pairs(x0, self.cell, self.pbc, self.cutoff)
        r = np.linalg.norm(pairs.vectors(x0), axis=1)
        self.r_nn = float(r.min())  # embedding density scale: the nearest-neighbour distance at the start

    def _pairs(self, positions: np.ndarray) -> PairList:
        return build_pairs(positions, self.cell, self.pbc, self.cutoff + self.skin)

    def _cut(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inside = r < self.cutoff
        x = np.clip(r / self.cutoff, 0, 1)
        fc = np.where(inside, 0.5 * np.cos(np.pi * x) + 0.5, 0.0)
        dfc = np.where(inside, -0.5 * np.pi / self.cutoff * np.sin(np.pi * x), 0.0)
        return fc, dfc

    def _radial(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """d/dr [g_k(r) f_c(r)] (P, n_radial), and the embedding density phi, dphi/dr (P,)."""
        fc, dfc = self._cut(r)
        z = (r[:, None] - self.mu) / self.sigma
        g = np.exp(-0.5 * z * z)
        radial = g * (dfc[:, None] - (z / self.sigma) * fc[:, None])
        e = np.exp(-self.beta * (r - self.r_nn))
        return radial, e * fc, e * (dfc - self.beta * fc)

    def _embedding_slopes(self, pairs: PairList, phi: np.ndarray) -> np.ndarray:
        """h_q'(rho_a) for every atom a and exponent q, (N, n_q); rho_a = sum of phi over a's pairs."""
        rho = np.bincount(pairs.i, phi, self.n_atoms) + np.bincount(pairs.j, phi, self.n_atoms)
        rho = np.maximum(rho, 1e-12)
        return np.stack([q * rho ** (q - 1.0) for q in self.embedding], axis=1)

    def _energy(self, pairs: PairList, r: np.ndarray, positions: np.ndarray, coef: np.ndarray) -> float:
        fc, _ = self._cut(r)
        z = (r[:, None] - self.mu) / self.sigma
        basis = np.exp(-0.5 * z * z) * fc[:, None]
        key = self.pair_key[self.species_index[pairs.i], self.species_index[pairs.j]]
        pair_coef = coef[:self.n_keys * self.n_radial].reshape(self.n_keys, self.n_radial)
        energy = float(np.sum(basis * pair_coef[key]))
        if self.embedding:
            phi = np.exp(-self.beta * (r - self.r_nn)) * fc
            rho = np.maximum(np.bincount(pairs.i, phi, self.n_atoms) + np.bincount(pairs.j, phi, self.n_atoms), 1e-12)
            emb = coef[self.n_keys * self.n_radial:].reshape(self.n_species, len(self.embedding))
            for k, q in enumerate(self.embedding):
                energy += float(np.sum(emb[self.species_index, k] * rho ** q))
        return energy

    def _derivatives(self, pairs: PairList, r: np.ndarray, positions: np.ndarray) -> np.ndarray:
        radial, phi, dphi = self._radial(r)
        p = len(pairs)
        key = self.pair_key[self.species_index[pairs.i], self.species_index[pairs.j]]
        if self.n_keys == 1:
            cols = [radial]
        else:
            blocks = np.zeros((p, self.n_keys, self.n_radial))
            blocks[np.arange(p), key] = radial
            cols = [blocks.reshape(p, -1)]
        if self.embedding:
            slopes = self._embedding_slopes(pairs, phi)
            si, sj = self.species_index[pairs.i], self.species_index[pairs.j]
            for s in range(self.n_species):
                cols.append(dphi[:, None] * (slopes[pairs.i] * (si == s)[:, None] + slopes[pairs.j] * (sj == s)[:, None]))
        return np.concatenate(cols, axis=1)
