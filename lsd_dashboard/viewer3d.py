"""The live 3D molecule: a Plotly scatter3d of atoms plus bond lines (plotly.js ships inside Panel,
so the view works with no internet). Bonds are coloured by how the shown step was produced
(accepted / repaired / target-bonus), and the title names the step and its kind.
"""

from __future__ import annotations

import numpy as np
import panel as pn
import plotly.graph_objects as go
from ase import Atoms
from ase.data import covalent_radii
from ase.data.colors import jmol_colors
from ase.neighborlist import natural_cutoffs, neighbor_list

from .rundata import KIND_STYLE

MAX_BONDED_ATOMS = 5000  # beyond this, atoms only (a bond list would dominate the page)


def bond_pairs(atoms: Atoms) -> np.ndarray:
    """(M, 2) bonded atom pairs i < j from covalent radii (minimum image ignored: no bonds across cells)."""
    if len(atoms) < 2 or len(atoms) > MAX_BONDED_ATOMS:
        return np.zeros((0, 2), dtype=int)
    probe = atoms.copy()
    probe.pbc = False
    i, j = neighbor_list("ij", probe, natural_cutoffs(probe, mult=1.15))
    keep = i < j
    return np.stack([i[keep], j[keep]], axis=1)


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgb)


class MoleculeView:
    """A Plotly pane showing one frame of a trajectory; ``update`` moves the atoms."""

    def __init__(self, atoms: Atoms | None = None, height: int = 420):
        self.pane = pn.pane.Plotly(self._figure(atoms), height=height, sizing_mode="stretch_width",
                                   config={"displaylogo": False, "responsive": True},
                                   css_classes=["lsd-molecule"])
        self.numbers = None if atoms is None else atoms.numbers.copy()
        self.bonds = np.zeros((0, 2), dtype=int) if atoms is None else bond_pairs(atoms)

    def reset(self, atoms: Atoms) -> None:
        """Show a new system (its initial positions)."""
        self.numbers = atoms.numbers.copy()
        self.bonds = bond_pairs(atoms)
        self.pane.object = self._figure(atoms)

    def _figure(self, atoms: Atoms | None) -> go.Figure:
        fig = go.Figure()
        if atoms is not None:
            numbers = atoms.numbers
            fig.add_trace(self._bond_trace(atoms.positions, bond_pairs(atoms), KIND_STYLE[0][1]))
            fig.add_trace(go.Scatter3d(
                x=atoms.positions[:, 0], y=atoms.positions[:, 1], z=atoms.positions[:, 2], mode="markers",
                marker=dict(size=(6 + 14 * covalent_radii[numbers]).tolist(),
                            color=[_hex(jmol_colors[z]) for z in numbers],
                            line=dict(color="#333333", width=1), opacity=1.0),
                text=atoms.get_chemical_symbols(), hoverinfo="text", name="atoms"))
        axis = dict(visible=False, showbackground=False)
        fig.update_layout(
            margin=dict(l=0, r=0, t=30, b=0), showlegend=False, uirevision="keep",
            title=dict(text="initial structure", x=0.02, font=dict(size=13)),
            scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="data"),
            paper_bgcolor="white")
        return fig

    @staticmethod
    def _bond_trace(positions: np.ndarray, bonds: np.ndarray, colour: str) -> go.Scatter3d:
        if len(bonds):
            segments = np.full((len(bonds), 3, 3), np.nan)
            segments[:, 0], segments[:, 1] = positions[bonds[:, 0]], positions[bonds[:, 1]]
            xyz = segments.reshape(-1, 3)
        else:
            xyz = np.zeros((0, 3))
        return go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="lines", hoverinfo="skip",
                            line=dict(color=colour, width=7), name="bonds", connectgaps=False)

    def update(self, positions: np.ndarray, kind: int, step: int) -> None:
        """Move the atoms to ``positions`` (N, 3) and label the frame with its step kind."""
        fig = self.pane.object
        if fig is None or len(fig.data) < 2:
            return
        label, colour = KIND_STYLE.get(int(kind), ("?", "#000000"))
        bonds = self._bond_trace(positions, self.bonds, colour)
        # One restyle message per trace (Panel forwards each to plotly.js; no full re-render).
        fig.data[0].update(x=bonds.x, y=bonds.y, z=bonds.z, line=dict(color=colour, width=7))
        fig.data[1].update(x=positions[:, 0], y=positions[:, 1], z=positions[:, 2])
        fig.layout.title.text = f"step {step} · <span style='color:{colour}'>{label}</span>"
