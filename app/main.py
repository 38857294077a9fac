"""`panel serve app` serves this page: the LSD dashboard (lsd_dashboard.app)."""

from lsd_dashboard.app import serve_page

serve_page().servable()
