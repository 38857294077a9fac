"""Notebook helpers: the dashboard and its parts in Jupyter, and an nglview widget of a trajectory.

In a notebook::

    import panel as pn
    pn.extension("plotly", "tabulator")
    from lsd_dashboard import Dashboard, RunController
    controller = RunController(n_steps=2000)
    Dashboard(controller)            # the whole page; or any part:
    dashboard.views.panels["rama_lsd"]
    trajectory_widget(controller)    # nglview (NGL ships inside the nglview package: offline)
"""

from __future__ import annotations

from typing import Any

from lsd_engine import RunResult

from .controller import RunController


def trajectory_atoms(source: RunResult | RunController, which: str = "lsd") -> list:
    """``ase.Atoms`` frames of an engine ``RunResult`` or of a controller's LSD / reference run."""
    if isinstance(source, RunController):
        data = source.data
        if data.atoms is None:
            raise ValueError("the controller has not run yet")
        log = data.lsd if which == "lsd" else data.reference
        with data.lock:
            source = log.as_result(data.atoms)
    if not isinstance(source, RunResult):
        raise TypeError(f"expected a RunResult or a RunController, got {type(source).__name__}")
    if len(source) == 0:
        raise ValueError("the trajectory has no frames yet")
    return source.to_atoms_list()


def trajectory_widget(source: RunResult | RunController, which: str = "lsd", **options: Any):
    """An nglview widget playing the trajectory (ball-and-stick); ``options`` go to ``show_asetraj``."""
    import nglview

    view = nglview.show_asetraj(trajectory_atoms(source, which), **options)
    view.clear_representations()
    view.add_ball_and_stick()
    return view
