"""The teaching notebooks in demos/: stored with their outputs, small and fresh, and they still run.

The stored copies (written by scripts/refresh_demos.py with full settings) are checked without
running them: executed top to bottom, no errors, a figure for every ``plt.show()``, no widget or
JavaScript bundles, under the size limit, code unchanged since the refresh, and the results the
text promises. Then every notebook is executed again with short settings (LSD_DEMO_FAST=1), two
at a time, each in its own kernel, so an API change that breaks a demo fails here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("refresh_demos", ROOT / "scripts" / "refresh_demos.py")
refresh_demos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refresh_demos)

NOTEBOOKS = refresh_demos.notebooks()
IDS = [p.stem for p in NOTEBOOKS]
#: Per notebook (by number): packages it needs, figures it draws at least, text its outputs contain.
EXPECTED = {
    "01": dict(needs=(), figures=3, text=("acceptance: measured", "EC on", "KS test")),
    "02": dict(needs=("openmm", "torchani"), figures=1, text=("finished", "Jensen-Shannon divergence")),
    "03": dict(needs=("openmm", "torchani"), figures=3, text=("predicted acceptance by depth", "measured:")),
    "04": dict(needs=("tblite", "gfnff"), figures=1,
               text=("steps per target call", "configurations evaluated by the target", "LSD vs target MD: largest |z|",
                     "MyGFN2 (fresh SCF every call): same seed twice, largest difference after")),
}
#: What the stored full-length run of notebook 04 shows (its seeds and calculators are deterministic).
STORED_VERDICTS = ("LSD: 3000 steps", "-> within noise", "draft alone vs target MD: largest |z|", "-> beyond noise",
                   "largest difference after 150 steps 0.0e+00")


def _outputs(notebook, key: str):
    return [out.get(key) for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _text(notebook) -> str:
    return "\n".join(t for t in _outputs(notebook, "text") if t)


def _figures(notebook) -> int:
    return sum("image/png" in (data or {}) for data in _outputs(notebook, "data"))


def test_there_are_four_demos():
    assert [p.name[:2] for p in NOTEBOOKS] == sorted(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_demo_has_fresh_small_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    problems = refresh_demos.problems(notebook, path.stat().st_size)
    assert not problems, f"{path.name}: {'; '.join(problems)} (run python3 scripts/refresh_demos.py {path.name})"
    expected = EXPECTED[path.name[:2]]
    assert _figures(notebook) >= expected["figures"]
    text = _text(notebook)
    assert all(phrase in text for phrase in expected["text"]), f"{path.name}: stored outputs lack {expected['text']}"
    if path.name.startswith("04"):
        assert all(phrase in text for phrase in STORED_VERDICTS), text


def test_problems_are_found():
    """The stored-notebook check fails for a stale, unexecuted, oversized or bundle-carrying notebook."""
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    assert refresh_demos.problems(notebook, 1000) == []
    code = [c for c in notebook.cells if c.cell_type == "code"]
    figure_cell = next(c for c in code if refresh_demos.figures_expected(c))
    figure_cell.outputs = [o for o in figure_cell.outputs if "image/png" not in o.get("data", {})]
    code[0].source += "\n# edited"
    code[-1].execution_count = None
    figure_cell.outputs.append(nbformat.v4.new_output("display_data", data={"application/javascript": "x"}))
    found = " | ".join(refresh_demos.problems(notebook, refresh_demos.MAX_NOTEBOOK_BYTES + 1))
    for phrase in ("changed since", "not executed", "but stores 0 figures", "application/javascript", "more than the limit"):
        assert phrase in found, found
    slimmed = refresh_demos.slim(notebook)
    assert any("application/javascript" in d for d in slimmed)
    assert not any("application/javascript" in (o.get("data") or {}) for o in figure_cell.outputs)


@pytest.fixture(scope="module")
def executed():
    """Every demo executed with short settings (LSD_DEMO_FAST=1), two at a time; files untouched."""
    return dict(zip(NOTEBOOKS, refresh_demos.execute(NOTEBOOKS, fast=True, concurrency=2)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_demo_runs_top_to_bottom(path, executed):
    expected = EXPECTED[path.name[:2]]
    for package in expected["needs"]:
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{path.name} needs {package}")
    outcome = executed[path]
    if isinstance(outcome, BaseException):
        raise outcome
    notebook, _seconds = outcome
    assert _figures(notebook) >= expected["figures"], f"{path.name} drew {_figures(notebook)} figures"
    text = _text(notebook)
    missing = [phrase for phrase in expected["text"] if phrase not in text]
    assert not missing, f"{path.name}: outputs lack {missing}"
