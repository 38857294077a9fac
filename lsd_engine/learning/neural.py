"""A small neural-network correction on local atomic environments (torch, CPU).

Behler-Parrinello style: each atom's environment is described by radial and angular
symmetry functions (per neighbour species / species pair, ANI-like), a per-element
MLP maps it to an atomic energy, and the correction is the force of the summed
energy, m(x) = -dE/dx (so it is conservative, translation and rotation invariant).

``AtomicEnergyModel`` is the network (also what ``lsd_engine.distill`` trains and saves);
``NeuralCorrection`` trains one online from a replay buffer of verified labels, a few
Adam steps per ``observe``, and is used anchored: g(x) = r(x_ref) + m(x) - m(x_ref).

Determinism: the weights are initialised from ``seed``; minibatches are drawn from a
generator keyed by (seed, labels seen); torch runs single-threaded inside ``observe`` and
``correction`` (restored afterwards), so the same labels in the same order give the
same correction bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._threads import torch_single_thread
from .base import LabelBuffer, LearnedCorrection
from .geometry import species_pair_index

__all__ = ["DescriptorSpec", "AtomicEnergyModel", "NeuralCorrection", "EnvironmentGraph", "build_graph"]


@dataclass
class DescriptorSpec:
    """Symmetry functions: radial Gaussians (n_radial on [0.8, radial_cutoff]) per neighbour
    species; angular terms (n_angles x n_angular_radii) per neighbour-species pair."""

    species: tuple[int, ...]  # atomic numbers, sorted
    radial_cutoff: float = 5.2
    angular_cutoff: float = 3.5
    n_radial: int = 16
    n_angles: int = 4
    n_angular_radii: int = 4
    zeta: float = 8.0
    hidden: tuple[int, ...] = (32, 32)

    @property
    def n_species(self) -> int:
        return len(self.species)

    @property
    def n_species_pairs(self) -> int:
        return self.n_species * (self.n_species + 1) // 2

    @property
    def n_features(self) -> int:
        return (self.n_species * self.n_radial
                + self.n_species_pairs * self.n_angles * self.n_angular_radii)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["species"] = list(self.species)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DescriptorSpec":
        d = dict(d)
        d["species"] = tuple(int(z) for z in d["species"])
        d["hidden"] = tuple(int(h) for h in d["hidden"])
        return cls(**d)


@dataclass
class EnvironmentGraph:
    """Neighbour edges (centre, neighbour, Cartesian shift) and angular triplets (edge a, edge b)
    of a batch of B configurations of N atoms (atoms numbered b * N + i)."""

    centre: np.ndarray
    neighbour: np.ndarray
    shift: np.ndarray
    triplet_a: np.ndarray
    triplet_b: np.ndarray
    n_configs: int
    n_atoms: int
    extra: dict[str, Any] = field(default_factory=dict)


def _edges_one(x: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float):
    n = x.shape[0]
    if not np.any(pbc):
        i, j = np.nonzero(~np.eye(n, dtype=bool))
        keep = np.linalg.norm(x[j] - x[i], axis=1) < cutoff
        return i[keep], j[keep], np.zeros((int(keep.sum()), 3))
    from ase.neighborlist import primitive_neighbor_list

    i, j, s = primitive_neighbor_list("ijS", pbc, cell, x, cutoff, self_interaction=False,
                                      use_scaled_positions=False)
    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    return i[order], j[order], s[order] @ cell


def _triplets(centre: np.ndarray, edges: np.ndarray, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (a < b) of the given edges that share a centre."""
    order = np.argsort(centre[edges], kind="stable")
    edges = edges[order]
    counts = np.bincount(centre[edges], minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ta, tb = [], []
    for size in np.unique(counts[counts > 1]):
        first = starts[counts == size]
        p, q = np.triu_indices(size, 1)
        ta.append((first[:, None] + p).ravel())
        tb.append((first[:, None] + q).ravel())
    if not ta:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ta, tb = np.concatenate(ta), np.concatenate(tb)
    return edges[ta], edges[tb]


def build_graph(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, radial_cutoff: float,
                angular_cutoff: float) -> EnvironmentGraph:
    """Edges within ``radial_cutoff`` and triplets of edges within ``angular_cutoff`` (same centre).

    Non-periodic systems get one graph of all pairs for the whole batch (the cutoff
    function zeroes what is out of range), so a batch needs no per-configuration work.
    """
    x = np.asarray(positions, dtype=float)
    if x.ndim == 2:
        x = x[None]
    b, n = x.shape[:2]
    if not np.any(pbc):
        i, j = np.nonzero(~np.eye(n, dtype=bool))
        dmin = np.linalg.norm(x[:, j] - x[:, i], axis=-1).min(axis=0)
        keep = dmin < radial_cutoff
        i, j = i[keep], j[keep]
        ta, tb = _triplets(i, np.flatnonzero(dmin[keep] < angular_cutoff), n)
        e = i.size
        offsets_atoms = (np.arange(b) * n)[:, None]
        offsets_edges = (np.arange(b) * e)[:, None]
        return EnvironmentGraph((i + offsets_atoms).ravel(), (j + offsets_atoms).ravel(), np.zeros((b * e, 3)),
                                (ta + offsets_edges).ravel(), (tb + offsets_edges).ravel(), b, n)
    cs, ns, ss, tas, tbs = [], [], [], [], []
    offset = 0
    for k in range(b):
        i, j, s = _edges_one(x[k], cell, pbc, radial_cutoff)
        d = np.linalg.norm(x[k][j] - x[k][i] + s, axis=1)
        ta, tb = _triplets(i, np.flatnonzero(d < angular_cutoff), n)
        cs.append(i + k * n)
        ns.append(j + k * n)
        ss.append(s)
        tas.append(ta + offset)
        tbs.append(tb + offset)
        offset += i.size
    return EnvironmentGraph(np.concatenate(cs), np.concatenate(ns), np.concatenate(ss),
                            np.concatenate(tas), np.concatenate(tbs), b, n)


def _cutoff_function(r, cutoff: float):
    """0.5 cos(pi r / cutoff) + 0.5 inside the cutoff, 0 outside (smooth to first order)."""
    import torch

    inside = r < cutoff
    return torch.where(inside, 0.5 * torch.cos(math.pi * torch.clamp(r, max=cutoff) / cutoff) + 0.5,
                       torch.zeros_like(r))


def _make_module(spec: DescriptorSpec, numbers: np.ndarray, dtype):
    import torch
    from torch import nn

    class _AtomicEnergy(nn.Module):
        def __init__(self):
            super().__init__()
            self.spec = spec
            species = np.asarray(spec.species)
            index = np.searchsorted(species, numbers)
            if np.any(species[np.minimum(index, species.size - 1)] != numbers):
                raise ValueError(f"atomic numbers {sorted(set(numbers.tolist()) - set(species.tolist()))} "
                                 f"are not in the model's species {spec.species}")
            self.register_buffer("atom_species", torch.as_tensor(index, dtype=torch.long))
            self.register_buffer("pair_index", torch.as_tensor(species_pair_index(spec.n_species)))
            self.register_buffer("mu_r", torch.linspace(0.8, spec.radial_cutoff, spec.n_radial, dtype=dtype))
            self.eta_r = float((spec.n_radial / (spec.radial_cutoff - 0.8)) ** 2 / 2.0)
            self.register_buffer("theta", torch.linspace(0, math.pi, spec.n_angles + 1, dtype=dtype)[:-1]
                                 + math.pi / (2 * spec.n_angles))
            self.register_buffer("mu_a", torch.linspace(0.9, spec.angular_cutoff, spec.n_angular_radii, dtype=dtype))
            self.eta_a = float((spec.n_angular_radii / (spec.angular_cutoff - 0.9)) ** 2 / 2.0)
            self.register_buffer("feature_mean", torch.zeros(spec.n_features, dtype=dtype))
            self.register_buffer("feature_scale", torch.ones(spec.n_features, dtype=dtype))
            self.nets = nn.ModuleList()
            for _ in range(spec.n_species):
                layers, width = [], spec.n_features
                for h in spec.hidden:
                    layers += [nn.Linear(width, h, dtype=dtype), nn.SiLU()]
                    width = h
                layers.append(nn.Linear(width, 1, dtype=dtype))
                self.nets.append(nn.Sequential(*layers))

        def features(self, x, g: dict[str, Any]):
            """Per-atom features (B*N, F) for positions x (B, N, 3) and a graph as tensors."""
            spec = self.spec
            flat = x.reshape(-1, 3)
            vec = flat[g["neighbour"]] - flat[g["centre"]] + g["shift"]
            r = torch.sqrt((vec * vec).sum(-1))
            fc = _cutoff_function(r, spec.radial_cutoff)
            radial = torch.exp(-self.eta_r * (r[:, None] - self.mu_r) ** 2) * fc[:, None]
            n_total = flat.shape[0]
            s = spec.n_species
            species = self.atom_species.repeat(g["n_configs"])
            slot = g["centre"] * s + species[g["neighbour"]]
            rad = torch.zeros(n_total * s, spec.n_radial, dtype=x.dtype).index_add(0, slot, radial)
            feats = [rad.reshape(n_total, s * spec.n_radial)]
            n_pairs = spec.n_species_pairs
            if g["triplet_a"].numel():
                ea, eb = g["triplet_a"], g["triplet_b"]
                ra, rb = r[ea], r[eb]
                cos = (vec[ea] * vec[eb]).sum(-1) / (ra * rb)
                angle = torch.acos(torch.clamp(cos, -1 + 1e-7, 1 - 1e-7))
                fca = _cutoff_function(ra, spec.angular_cutoff) * _cutoff_function(rb, spec.angular_cutoff)
                ang = (2.0 ** (1 - spec.zeta)) * (1 + torch.cos(angle[:, None] - self.theta)) ** spec.zeta
                rad_a = torch.exp(-self.eta_a * (0.5 * (ra + rb)[:, None] - self.mu_a) ** 2)
                term = (ang[:, :, None] * rad_a[:, None, :] * fca[:, None, None]).reshape(ea.numel(), -1)
                pair = self.pair_index[species[g["neighbour"][ea]], species[g["neighbour"][eb]]]
                aslot = g["centre"][ea] * n_pairs + pair
                angular = torch.zeros(n_total * n_pairs, term.shape[1], dtype=x.dtype).index_add(0, aslot, term)
            else:
                angular = torch.zeros(n_total * n_pairs, spec.n_angles * spec.n_angular_radii, dtype=x.dtype)
            feats.append(angular.reshape(n_total, -1))
            return torch.cat(feats, dim=1)

        def energy(self, x, g: dict[str, Any]):
            """Total energies (B,) of positions x (B, N, 3)."""
            feats = (self.features(x, g) - self.feature_mean) / self.feature_scale
            species = self.atom_species.repeat(g["n_configs"])
            atomic = torch.zeros(feats.shape[0], dtype=x.dtype)
            for k, net in enumerate(self.nets):
                mask = species == k
                if bool(mask.any()):
                    atomic = atomic.index_put((torch.nonzero(mask).squeeze(1),), net(feats[mask]).squeeze(1))
            return atomic.reshape(g["n_configs"], -1).sum(1)

    return _AtomicEnergy()


class AtomicEnergyModel:
    """A per-element MLP energy on symmetry functions, bound to one system (numbers, cell, pbc).

    ``forces(x)`` gives -dE/dx (eV/Å) for positions (N, 3) or (B, N, 3); graphs are built
    at each call unless a reference graph is set with ``set_reference(x_ref, skin)``.
    """

    def __init__(self, spec: DescriptorSpec, numbers: np.ndarray, cell=None, pbc=None, seed: int = 0,
                 dtype: str = "float64"):
        import torch

        self.spec = spec
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.n_atoms = self.numbers.size
        self.cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, dtype=float)
        self.pbc = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
        self.dtype = getattr(torch, dtype)
        self.dtype_name = dtype
        with torch_single_thread():
            torch.manual_seed(int(seed))
            self.module = _make_module(spec, self.numbers, self.dtype)
        self._reference: dict[str, Any] | None = None
        self.skin = 1.0

    # -- graphs --------------------------------------------------------------------
    def graph(self, positions: np.ndarray, skin: float = 0.0) -> dict[str, Any]:
        import torch

        g = build_graph(positions, self.cell, self.pbc, self.spec.radial_cutoff + skin,
                        self.spec.angular_cutoff + skin)
        return {"centre": torch.as_tensor(g.centre), "neighbour": torch.as_tensor(g.neighbour),
                "shift": torch.as_tensor(g.shift, dtype=self.dtype), "triplet_a": torch.as_tensor(g.triplet_a),
                "triplet_b": torch.as_tensor(g.triplet_b), "n_configs": g.n_configs}

    def set_reference(self, positions: np.ndarray | None, skin: float = 1.0) -> None:
        """Build the neighbour graph once at ``positions`` (with a skin) for later single calls."""
        self.skin = float(skin)
        self._reference = None if positions is None else self.graph(positions, skin)

    # -- evaluation ----------------------------------------------------------------
    def energy_and_forces(self, positions: np.ndarray, graph: dict[str, Any] | None = None):
        import torch

        x = np.asarray(positions, dtype=float)
        single = x.ndim == 2
        xb = x[None] if single else x
        if graph is None:
            graph = self._reference if (single and self._reference is not None) else self.graph(xb)
        with torch_single_thread():
            xt = torch.tensor(xb, dtype=self.dtype, requires_grad=True)
            e = self.module.energy(xt, graph)
            (grad,) = torch.autograd.grad(e.sum(), xt)
        f = -grad.detach().double().numpy()
        e = e.detach().double().numpy()
        return (e[0], f[0]) if single else (e, f)

    def forces(self, positions: np.ndarray) -> np.ndarray:
        return self.energy_and_forces(positions)[1]

    # -- parameters ----------------------------------------------------------------
    def fit_feature_scaling(self, positions: np.ndarray) -> None:
        """Standardise the features with their mean and spread over ``positions`` (B, N, 3)."""
        import torch

        with torch_single_thread(), torch.no_grad():
            xb = torch.as_tensor(np.asarray(positions, dtype=float), dtype=self.dtype)
            f = self.module.features(xb, self.graph(positions))
            self.module.feature_mean.copy_(f.mean(0))
            self.module.feature_scale.copy_(torch.clamp(f.std(0), min=1e-3))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self.module.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})


class NeuralCorrection(LearnedCorrection):
    """Online-trained ``AtomicEnergyModel`` of the residual, used anchored at the latest label.

    Each ``observe`` adds the labels to a replay buffer (the most recent ``buffer_size``)
    and runs ``steps_per_observe`` Adam steps on minibatches of ``batch_size`` labels
    (the newest labels always included). Training starts once ``min_labels`` are in;
    until then it is constant EC. The loss is the whitened force error
    Σ (r - m)² / m_i (what acceptance depends on), so hydrogens weigh most.
    """

    name = "neural"

    def __init__(self, numbers: np.ndarray, masses: np.ndarray, cell=None, pbc=None, spec: DescriptorSpec | None = None,
                 seed: int = 0, buffer_size: int = 2000, batch_size: int = 16, steps_per_observe: int = 4,
                 learning_rate: float = 2e-3, min_labels: int = 32, anchor: bool = True,
                 dtype: str = "float64", skin: float = 1.0, initial: dict[str, np.ndarray] | None = None):
        numbers = np.asarray(numbers, dtype=np.int64)
        super().__init__(numbers.size, anchor=anchor)
        self.spec = spec or DescriptorSpec(species=tuple(sorted(set(numbers.tolist()))))
        self.seed, self.batch_size, self.steps_per_observe = int(seed), int(batch_size), int(steps_per_observe)
        self.learning_rate, self.min_labels, self.skin = float(learning_rate), int(min_labels), float(skin)
        self.weights = 1.0 / np.asarray(masses, dtype=float)[:, None]
        self.net = AtomicEnergyModel(self.spec, numbers, cell, pbc, seed=seed, dtype=dtype)
        self.buffer = LabelBuffer(int(buffer_size), self.n_atoms)
        self.trained = False
        self.steps = 0
        self._initial = initial
        self._init_optimizer()
        if initial is not None:
            self.net.load_state_arrays(initial)
            self.trained = True

    def _init_optimizer(self) -> None:
        import torch

        self.optimizer = torch.optim.Adam(self.net.module.nets.parameters(), lr=self.learning_rate)

    def _train_step(self, x: np.ndarray, r: np.ndarray) -> float:
        import torch

        with torch_single_thread():
            xt = torch.tensor(x, dtype=self.net.dtype, requires_grad=True)
            e = self.net.module.energy(xt, self.net.graph(x))
            (grad,) = torch.autograd.grad(e.sum(), xt, create_graph=True)
            err = (torch.as_tensor(r, dtype=self.net.dtype) + grad) ** 2 * torch.as_tensor(self.weights,
                                                                                          dtype=self.net.dtype)
            loss = err.sum() / x.shape[0]
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    def _learn(self, positions: np.ndarray, residuals: np.ndarray) -> None:
        self.buffer.add(positions, residuals)
        x, r = self.buffer.recent()
        if x.shape[0] < self.min_labels:
            return
        if not self.trained:
            self.net.fit_feature_scaling(x)
            self.trained = True
        rng = np.random.default_rng([self.seed, self.buffer.count])
        newest = np.arange(max(0, x.shape[0] - positions.shape[0]), x.shape[0])
        for _ in range(self.steps_per_observe):
            n_random = max(0, self.batch_size - newest.size)
            pick = np.concatenate([newest[-self.batch_size:], rng.integers(0, x.shape[0], n_random)])
            self._train_step(x[pick], r[pick])
            self.steps += 1
        self.net.set_reference(positions[-1], self.skin)  # the next round's reference

    def _model(self, positions: np.ndarray) -> np.ndarray | None:
        if not self.trained:
            return None
        return self.net.forces(positions)

    def _state(self) -> dict[str, np.ndarray]:
        out = self.buffer.state("buffer_")
        out["trained"] = np.array(self.trained)
        out["steps"] = np.array(self.steps)
        for k, v in self.net.state_arrays().items():
            out[f"net.{k}"] = v
        for k, v in _optimizer_arrays(self.optimizer).items():
            out[f"opt.{k}"] = v
        return out

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.buffer = LabelBuffer(self.buffer.capacity, self.n_atoms)
        if "buffer_positions" in state:
            self.buffer.restore(state, "buffer_")
        self.trained = bool(state.get("trained", False))
        self.steps = int(state.get("steps", 0))
        net = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
        if net:
            self.net.load_state_arrays(net)
        self._init_optimizer()
        opt = {k[4:]: v for k, v in state.items() if k.startswith("opt.")}
        if opt:
            _load_optimizer_arrays(self.optimizer, opt)
        self.net.set_reference(None)

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        if self._x_ref is not None:
            self.net.set_reference(self._x_ref, self.skin)


def _optimizer_arrays(optimizer) -> dict[str, np.ndarray]:
    out = {}
    for i, st in optimizer.state_dict()["state"].items():
        for key, value in st.items():
            out[f"{i}.{key}"] = np.asarray(value.detach().cpu().numpy() if hasattr(value, "numpy") else value)
    return out


def _load_optimizer_arrays(optimizer, arrays: dict[str, np.ndarray]) -> None:
    import torch

    sd = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, value in arrays.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = torch.as_tensor(np.asarray(value))
    sd["state"] = state
    optimizer.load_state_dict(sd)
