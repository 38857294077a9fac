"""``lsd distill``: the distilled drafts and their training live in :mod:`lsd_engine.learning.distill`;
this module keeps the old import path working."""

from .learning.distill import *  # noqa: F401,F403
from .learning.distill import __all__  # noqa: F401
