"""The teaching notebooks in demos/ run top to bottom, offline, with short settings (LSD_DEMO_FAST=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

DEMOS = Path(__file__).resolve().parents[1] / "demos"
NOTEBOOKS = sorted(DEMOS.glob("*.ipynb"))


def test_there_are_three_demos():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_demo_runs_top_to_bottom(path, monkeypatch):
    if "alanine" in path.name or "theory" in path.name:
        pytest.importorskip("openmm")
        pytest.importorskip("torchani")
    monkeypatch.setenv("LSD_DEMO_FAST", "1")
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        f"{path.name} is committed with outputs; clear them"
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(DEMOS)}})
    client.execute()
    text = "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    images = sum("image/png" in out.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
                 for out in cell.get("outputs", []))
    assert images >= {"01": 3, "02": 1, "03": 3}[path.name[:2]], f"{path.name} drew {images} figures"
    if "speculative" in path.name:
        assert "acceptance: measured" in text and "EC on" in text and "KS test" in text
    if "alanine" in path.name:
        assert "finished" in text and "Jensen-Shannon divergence" in text
    if "theory" in path.name:
        assert "predicted acceptance by depth" in text and "measured:" in text
    assert os.environ.get("LSD_DEMO_FAST") == "1"
