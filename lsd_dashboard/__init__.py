"""The LSD dashboard: a Panel app (``panel serve app``) and notebook components.

``RunController`` owns a run (configuration in parameters, the run in a thread);
``Dashboard`` is the whole page; ``LiveViews`` and ``TheoryExplorer`` are its parts;
``lsd_dashboard.jupyter.trajectory_widget`` shows a trajectory with nglview.
The engine (``lsd_engine``) never imports this package.
"""

from .controller import RunController

__all__ = ["Dashboard", "LiveViews", "RunController", "TheoryExplorer"]


def __getattr__(name: str):
    # Panel / HoloViews are imported only when a view is asked for.
    if name == "Dashboard":
        from .app import Dashboard

        return Dashboard
    if name == "LiveViews":
        from .views import LiveViews

        return LiveViews
    if name == "TheoryExplorer":
        from .theory_explorer import TheoryExplorer

        return TheoryExplorer
    raise AttributeError(name)
