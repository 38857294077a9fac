"""Backpressure for live views: never queue more refreshes than the browser has applied.

A fast run makes new data every refresh period, and a slow browser (software rendering, shared cores)
can apply Bokeh updates more slowly than the server sends them. The updates then queue in the browser
and everything behind them waits too, so the answer to a click can show late. With
``ClientAck`` in the page, each refresh the server sends carries a sequence number that the browser
echoes back once it has applied the updates before it; the refresh loop skips a period while
``max_in_flight`` refreshes are unacknowledged, so the queue stays short and clicks answer promptly.

Until the browser has acknowledged once (the component is not on screen: an in-process controller, a
notebook cell not yet shown) refreshes are never held back.
"""

from __future__ import annotations

import param
from panel.reactive import ReactiveHTML

MAX_IN_FLIGHT = 2  # unacknowledged refreshes at which the next period is skipped


class ClientAck(ReactiveHTML):
    """An invisible element: ``sent`` goes to the browser, which sets ``seen`` to it once applied."""

    sent = param.Integer(default=1, doc="sequence number of the last refresh sent")
    seen = param.Integer(default=0, doc="the last sequence number the browser applied (0: never rendered)")

    _template = "<div id='ack' style='display:none'></div>"
    _scripts = {"render": "data.seen = data.sent", "sent": "data.seen = data.sent"}

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT, **params):
        super().__init__(width=0, height=0, margin=0, **params)
        self.max_in_flight = max_in_flight

    @property
    def lagging(self) -> bool:
        """True when the browser is on screen and ``max_in_flight`` or more refreshes behind."""
        return self.seen > 0 and self.sent - self.seen >= self.max_in_flight

    def sent_one(self) -> None:
        """Call after a refresh that pushed updates."""
        self.sent += 1
