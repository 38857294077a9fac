"""Distributions of draft MD, target MD and LSD, their divergences and a sampling-noise band.

Each observable is a fixed binning; every run accumulates one histogram per chunk of
``CHUNK_STEPS`` steps (or per streamed block, if longer), so at any time the run's
histogram is the sum of its chunks and the two halves of the target-MD run (first chunks
vs last chunks) can be compared with each other. That divergence is what two independent
halves of an exact run differ by from sampling noise alone (correlations included). The
noise band of a comparison is that value rescaled to the comparison's sample sizes
(sampling noise in a divergence grows like 1/n₁ + 1/n₂; the halves have 4/n). LSD counts
as consistent with target MD within ``CONSISTENT_FACTOR`` bands, the draft as different
beyond ``DIFFERENT_FACTOR`` bands.

Observables: the Ramachandran plane (peptides), the pair-distance distribution of each
pair of elements (every system), the instantaneous kinetic temperature (with the exact
law of the canonical ensemble: 2 KE / (n k_B T) follows a Gamma(n/2) distribution), and
the potential energy of LSD vs target MD (both are target energies; draft MD's energies
come from the draft and are not comparable). No Panel here: tested without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from typing import Any

import numpy as np
from ase import units
from ase.data import chemical_symbols
from scipy import stats as scipy_stats

from lsd_engine import observables

CHUNK_STEPS = 200  # steps per chunk histogram (the granularity of the halves)
DISTANCE_BINS = 60
TEMPERATURE_BINS = 40
ENERGY_BINS = 40
RAMA_BINS = 36
MAX_PAIRS_PER_FRAME = 4000  # distance pairs kept per frame (a fixed random subset for large systems)
CONSISTENT_FACTOR = 2.0  # JS(LSD, target) within this many noise bands: "consistent"
DIFFERENT_FACTOR = 5.0  # JS(draft, target) beyond this many noise bands: "differs"
RUNS = ("draft MD", "target MD", "LSD")


@dataclass
class Chunked:
    """Histogram of one observable for one run, kept per chunk of steps."""

    n_bins: int
    chunks: list[np.ndarray] = field(default_factory=list)
    steps_in_last: int = 0

    def add(self, counts: np.ndarray, steps: int) -> None:
        if not self.chunks or self.steps_in_last >= CHUNK_STEPS:
            self.chunks.append(np.zeros(self.n_bins))
            self.steps_in_last = 0
        self.chunks[-1] += counts.ravel()
        self.steps_in_last += steps

    def total(self) -> np.ndarray:
        return np.sum(self.chunks, axis=0) if self.chunks else np.zeros(self.n_bins)

    def halves(self) -> tuple[np.ndarray, np.ndarray] | None:
        n = len(self.chunks)
        if n < 4:
            return None
        return np.sum(self.chunks[:n // 2], axis=0), np.sum(self.chunks[n // 2:], axis=0)


def js_or_nan(p: np.ndarray, q: np.ndarray) -> float:
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    return observables.jensen_shannon(p, q)


class Observable:
    """One binned observable with a histogram per run; subclasses say how a block is binned."""

    name = ""
    unit = ""
    runs: tuple[str, ...] = RUNS

    def __init__(self, edges: np.ndarray, shape: tuple[int, ...] | None = None):
        self.edges = edges
        self.shape = shape or (len(edges) - 1,)
        n_bins = int(np.prod(self.shape))
        self.hist = {run: Chunked(n_bins) for run in self.runs}

    def add(self, run: str, positions: np.ndarray, momenta: np.ndarray, energies: np.ndarray) -> None:
        if run in self.hist and len(positions):
            self.hist[run].add(self.counts(positions, momenta, energies), len(positions))

    def counts(self, positions: np.ndarray, momenta: np.ndarray, energies: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def density(self, run: str) -> np.ndarray:
        """Normalised histogram (probability per bin) of ``run``."""
        total = self.hist[run].total()
        return total / total.sum() if total.sum() > 0 else total

    def exact(self) -> np.ndarray | None:
        """Exact probability per bin where the law is known (kinetic temperature), else None."""
        return None

    def report(self) -> dict[str, Any]:
        """JS divergences to target MD, the noise band, and the verdicts in words."""
        target = self.hist["target MD"].total()
        samples = {r: int(self.hist[r].total().sum()) for r in self.runs}
        out: dict[str, Any] = {"name": self.name, "samples": samples}
        for run in self.runs:
            if run != "target MD":
                out[f"js_{run}"] = js_or_nan(self.hist[run].total(), target)
        halves = self.hist["target MD"].halves()
        out["noise_halves"] = js_or_nan(*halves) if halves is not None else math.nan
        out["noise"] = noise_band(out["noise_halves"], samples.get("LSD", 0), samples["target MD"])
        out["noise_draft"] = noise_band(out["noise_halves"], samples.get("draft MD", 0), samples["target MD"])
        exact = self.exact()
        if exact is not None:
            out["js_exact_target"] = js_or_nan(target, exact)
            out["js_exact_LSD"] = js_or_nan(self.hist["LSD"].total(), exact)
        out["lsd_consistent"] = verdict(out.get("js_LSD", math.nan), out["noise"], CONSISTENT_FACTOR, below=True)
        out["draft_differs"] = verdict(out.get("js_draft MD", math.nan), out["noise_draft"], DIFFERENT_FACTOR,
                                       below=False)
        return out


def noise_band(js_halves: float, n_run: int, n_target: int) -> float:
    """The halves' divergence rescaled to a comparison of ``n_run`` with ``n_target`` samples.

    Sampling noise in a divergence grows like 1/n₁ + 1/n₂; the halves (n/2 each) have 4/n.
    """
    if not (math.isfinite(js_halves) and n_run > 0 and n_target > 0):
        return math.nan
    return js_halves * (1.0 / n_run + 1.0 / n_target) / (4.0 / n_target)


def verdict(js: float, noise: float, factor: float, below: bool) -> bool | None:
    """js ≤ factor·noise (``below``) or js > factor·noise; None while either is unknown."""
    if not (math.isfinite(js) and math.isfinite(noise)):
        return None
    return bool(js <= factor * noise) if below else bool(js > factor * noise)


class PairDistances(Observable):
    """Distribution of the distances between atoms of two elements (Å), up to ``r_max``."""

    unit = "Å"

    def __init__(self, numbers: np.ndarray, pair: tuple[int, int], r_max: float, cell: Any = None,
                 pbc: Any = None, seed: int = 0):
        super().__init__(np.linspace(0.0, r_max, DISTANCE_BINS + 1))
        a, b = pair
        self.name = f"{chemical_symbols[a]}–{chemical_symbols[b]} distances"
        i, j = np.triu_indices(len(numbers), k=1)
        keep = ((numbers[i] == a) & (numbers[j] == b)) | ((numbers[i] == b) & (numbers[j] == a))
        i, j = i[keep], j[keep]
        if i.size > MAX_PAIRS_PER_FRAME:
            pick = np.sort(np.random.default_rng(seed).choice(i.size, MAX_PAIRS_PER_FRAME, replace=False))
            i, j = i[pick], j[pick]
        self.i, self.j = i, j
        self.cell = np.asarray(cell, dtype=float) if pbc is not None and np.any(pbc) else None

    def counts(self, positions, momenta, energies):
        d = positions[:, self.j] - positions[:, self.i]
        if self.cell is not None:  # minimum image for an orthorhombic-or-not cell via fractional coordinates
            frac = d @ np.linalg.inv(self.cell)
            d = (frac - np.round(frac)) @ self.cell
        return np.histogram(np.linalg.norm(d, axis=-1), bins=self.edges)[0].astype(float)


class KineticTemperature(Observable):
    """Instantaneous kinetic temperature (K) and its exact canonical law."""

    name = "kinetic temperature"
    unit = "K"

    def __init__(self, masses: np.ndarray, temperature_K: float):
        self.masses = np.asarray(masses, dtype=float)
        self.n_dof = 3 * len(self.masses)
        self.temperature_K = float(temperature_K)
        spread = 5.0 * math.sqrt(2.0 / self.n_dof)
        super().__init__(np.linspace(max(0.0, 1 - spread), 1 + spread, TEMPERATURE_BINS + 1) * self.temperature_K)

    def counts(self, positions, momenta, energies):
        t = observables.kinetic_temperature(momenta, self.masses)
        return np.histogram(t, bins=self.edges)[0].astype(float)

    def exact(self) -> np.ndarray:
        """P(T_kin in each bin): T_kin = 2 KE / (n k_B) with KE ~ Gamma(n/2, k_B T)."""
        shape = self.n_dof / 2.0
        scale = self.temperature_K / shape  # T_kin = (T / (n/2)) · Gamma(n/2, 1)
        cdf = scipy_stats.gamma.cdf(self.edges, a=shape, scale=scale)
        return np.diff(cdf)


class PotentialEnergy(Observable):
    """Target potential energy per atom (eV) of LSD and target MD (draft MD has draft energies)."""

    name = "potential energy"
    unit = "eV/atom"
    runs = ("target MD", "LSD")

    def __init__(self, n_atoms: int, initial_energy: float, temperature_K: float):
        self.n_atoms = n_atoms
        kT = units.kB * temperature_K
        centre = initial_energy / n_atoms + 1.5 * kT  # equipartition above a minimum-energy start
        width = max(0.02, 8.0 * kT * math.sqrt(1.5 / n_atoms))
        super().__init__(np.linspace(centre - width, centre + width, ENERGY_BINS + 1))

    def counts(self, positions, momenta, energies):
        return np.histogram(np.asarray(energies) / self.n_atoms, bins=self.edges)[0].astype(float)


class Ramachandran(Observable):
    """The (φ, ψ) plane of a peptide backbone."""

    name = "Ramachandran (φ, ψ)"
    unit = "deg"

    def __init__(self, dihedrals: tuple[list[int], list[int]]):
        super().__init__(np.linspace(-180.0, 180.0, RAMA_BINS + 1), (RAMA_BINS, RAMA_BINS))
        self.dihedrals = dihedrals

    def counts(self, positions, momenta, energies):
        phi, psi = observables.phi_psi(positions, *self.dihedrals)
        return observables.ramachandran_histogram(phi, psi, bins=RAMA_BINS, density=False)[0]


def element_pairs(numbers: np.ndarray, limit: int = 3) -> list[tuple[int, int]]:
    """The element pairs with the most atom pairs (at most ``limit``)."""
    counts = {z: int(np.count_nonzero(numbers == z)) for z in np.unique(numbers)}
    pairs = [(a, b) for a, b in combinations_with_replacement(sorted(counts), 2)
             if (counts[a] * (counts[b] - (a == b))) > 0]
    pairs.sort(key=lambda p: -counts[p[0]] * (counts[p[1]] - (p[0] == p[1])))
    return pairs[:limit]


class Comparison:
    """Every observable of one system, fed with the blocks of the three runs."""

    def __init__(self, atoms: Any, temperature_K: float, dihedrals: tuple[list[int], list[int]] | None):
        numbers = atoms.get_atomic_numbers()
        cell, pbc = np.asarray(atoms.get_cell()), atoms.get_pbc()
        if np.any(pbc):
            r_max = 0.5 * float(min(np.linalg.norm(cell, axis=1)))
        else:
            positions = atoms.get_positions()
            r_max = 1.5 * float(np.max(np.linalg.norm(positions - positions.mean(axis=0), axis=1))) * 2 + 1.0
        self.observables: list[Observable] = []
        if dihedrals is not None:
            self.observables.append(Ramachandran(dihedrals))
        self.observables.extend(PairDistances(numbers, pair, r_max, cell, pbc) for pair in element_pairs(numbers))
        self.observables.append(KineticTemperature(atoms.get_masses(), temperature_K))
        self.n_atoms, self.temperature_K = len(numbers), float(temperature_K)

    def add(self, run: str, positions: np.ndarray, momenta: np.ndarray, energies: np.ndarray) -> None:
        """A block of ``run`` (one of :data:`RUNS`): positions (T, N, 3), momenta, energies (T,)."""
        if run != "draft MD" and len(energies) and not any(isinstance(o, PotentialEnergy) for o in self.observables):
            if math.isfinite(float(energies[0])):  # the binning is centred on the first target energy seen
                self.observables.append(PotentialEnergy(self.n_atoms, float(energies[0]), self.temperature_K))
        for observable in self.observables:
            observable.add(run, positions, momenta, energies)

    @property
    def complete(self) -> bool:
        """Whether every observable exists (the energy one appears with the first target energy)."""
        return any(isinstance(o, PotentialEnergy) for o in self.observables)

    def reports(self) -> list[dict[str, Any]]:
        return [o.report() for o in self.observables]

    def converged(self) -> bool | None:
        """LSD consistent with target MD in every observable and, when draft MD runs, the draft different
        in at least one; None while a verdict is still unknown."""
        reports = self.reports()
        lsd = [r["lsd_consistent"] for r in reports]
        drafts = [r["draft_differs"] for r in reports if r["samples"].get("draft MD")]
        if not lsd or None in lsd or None in drafts:
            return None
        return all(lsd) and (not drafts or any(drafts))


def verdict_text(report: dict[str, Any]) -> str:
    """One sentence on what an observable says so far."""
    lsd, draft = report.get("lsd_consistent"), report.get("draft_differs")
    if lsd is None:
        return "not enough samples yet"
    parts = ["LSD agrees with target MD within the noise" if lsd else
             "LSD differs from target MD by more than the noise so far"]
    if draft is not None:
        parts.append("the draft alone samples a different distribution" if draft else
                     "the draft alone is close to the target here")
    return "; ".join(parts)
