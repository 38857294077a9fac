"""Pair geometry for the corrections: neighbour pairs with periodic images, distances, scatter.

Pairs are built once from a reference configuration (with a skin) and then used for
every configuration of a round, so a correction stays a fixed function of x during
the round. Periodic systems use the minimum number of image shifts that the cutoff
needs (via ``ase.neighborlist.primitive_neighbor_list``).
"""

from __future__ import annotations

import numpy as np
from ase.neighborlist import primitive_neighbor_list

__all__ = ["PairList", "build_pairs", "covalent_graph_pairs", "species_pair_index"]


class PairList:
    """Unordered pairs (i < j, or i == j across images) with Cartesian image shifts."""

    def __init__(self, i: np.ndarray, j: np.ndarray, shifts: np.ndarray, n_atoms: int):
        self.i = np.asarray(i, dtype=np.int64)
        self.j = np.asarray(j, dtype=np.int64)
        self.shifts = np.asarray(shifts, dtype=float).reshape(-1, 3)
        self.n_atoms = int(n_atoms)

    def __len__(self) -> int:
        return int(self.i.size)

    def vectors(self, positions: np.ndarray) -> np.ndarray:
        """r_ij = x_j - x_i + shift, shape (P, 3) (or (B, P, 3) for a batch)."""
        return positions[..., self.j, :] - positions[..., self.i, :] + self.shifts

    def scatter(self, pair_forces: np.ndarray) -> np.ndarray:
        """Per-atom forces from a force f on atom j along each pair (and -f on atom i): (N, 3)."""
        out = np.empty((self.n_atoms, 3))
        for c in range(3):
            out[:, c] = (np.bincount(self.j, pair_forces[:, c], self.n_atoms)
                         - np.bincount(self.i, pair_forces[:, c], self.n_atoms))
        return out

    def incidence(self) -> np.ndarray:
        """(N, P) matrix with +1 at (j, p) and -1 at (i, p): forces = incidence @ pair_forces."""
        m = np.zeros((self.n_atoms, len(self)))
        np.add.at(m, (self.j, np.arange(len(self))), 1.0)
        np.add.at(m, (self.i, np.arange(len(self))), -1.0)
        return m


def _image_shifts(cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    """Integer image shifts (S, 3) that can hold a neighbour within ``cutoff``."""
    volume = abs(np.linalg.det(cell))
    reach = []
    for k in range(3):
        if not pbc[k]:
            reach.append(0)
            continue
        height = volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
        reach.append(int(np.ceil(cutoff / height)))
    grids = np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def build_pairs(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> PairList:
    """All pairs closer than ``cutoff`` Å at ``positions`` (each unordered pair once, fixed order)."""
    x = np.asarray(positions, dtype=float)
    n = x.shape[0]
    pbc = np.asarray(pbc, dtype=bool)
    if not pbc.any():
        i, j = np.triu_indices(n, 1)
        keep = np.linalg.norm(x[j] - x[i], axis=1) < cutoff
        return PairList(i[keep], j[keep], np.zeros((int(keep.sum()), 3)), n)
    cell = np.asarray(cell, dtype=float)
    shifts = _image_shifts(cell, pbc, float(cutoff))
    if n * n * len(shifts) > 4_000_000:  # large systems: ASE's binned search
        i, j, s = primitive_neighbor_list("ijS", pbc, cell, x, float(cutoff), self_interaction=False,
                                          use_scaled_positions=False)
    else:  # small cells: every atom pair under every image shift that can reach
        cart = shifts @ cell
        d = x[None, None, :, :] - x[None, :, None, :] + cart[:, None, None, :]  # (S, i, j, 3): x_j - x_i + shift
        close = np.einsum("sijc,sijc->sij", d, d) < cutoff * cutoff
        sidx, i, j = np.nonzero(close)
        s = shifts[sidx]
        keep = ~((i == j) & ~s.any(axis=1))
        i, j, s = i[keep], j[keep], s[keep]
    # keep each unordered pair once: i < j, or i == j with the first non-zero shift positive
    first = np.where(s[:, 0] != 0, s[:, 0], np.where(s[:, 1] != 0, s[:, 1], s[:, 2]))
    keep = (i < j) | ((i == j) & (first > 0))
    order = np.lexsort((s[keep, 2], s[keep, 1], s[keep, 0], j[keep], i[keep]))  # deterministic order
    i, j, s = i[keep][order], j[keep][order], s[keep][order]
    return PairList(i, j, s @ cell, n)


def covalent_graph_pairs(positions: np.ndarray, numbers: np.ndarray, max_separation: int = 3,
                         scale: float = 1.15) -> tuple[PairList, np.ndarray]:
    """Pairs of a molecule separated by 1..max_separation covalent bonds (1-2, 1-3, 1-4).

    Bonds: distance < scale * (r_cov_i + r_cov_j). Returns the pairs and their bond
    separation (P,). Non-periodic systems only.
    """
    from ase.data import covalent_radii

    x = np.asarray(positions, dtype=float)
    n = x.shape[0]
    radii = covalent_radii[np.asarray(numbers)]
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    bonded = (d < scale * (radii[:, None] + radii[None])) & ~np.eye(n, dtype=bool)
    hops = np.full((n, n), np.inf)
    np.fill_diagonal(hops, 0)
    frontier = np.eye(n, dtype=bool)
    for k in range(1, max_separation + 1):
        frontier = (frontier.astype(int) @ bonded.astype(int) > 0) & np.isinf(hops)
        hops[frontier] = k
    i, j = np.triu_indices(n, 1)
    keep = np.isfinite(hops[i, j])
    return PairList(i[keep], j[keep], np.zeros((int(keep.sum()), 3)), n), hops[i, j][keep].astype(int)


def species_pair_index(n_species: int) -> np.ndarray:
    """Symmetric (S, S) table numbering the unordered species pairs 0 .. S(S+1)/2 - 1."""
    index = np.zeros((n_species, n_species), dtype=np.int64)
    a, b = np.triu_indices(n_species)
    index[a, b] = index[b, a] = np.arange(a.size)
    return index
