"""What the person who starts the server allows: the dashboard's server-side configuration.

Visitors of a served page can set run settings within these limits, never the limits
themselves. Each limit is read, in increasing priority, from its default, an
environment variable ``LSD_DASHBOARD_<NAME>`` and ``panel serve app --args --<name> VALUE``
(see app/README.md and docs/security.md). Bad values stop the server with a message
naming the setting.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "LSD_DASHBOARD_"


@dataclass(frozen=True)
class ServerPolicy:
    """Operator limits of one dashboard server (units in the names)."""

    output_root: Path = Path("lsd-dashboard-runs")
    """Folder under which background runs write their results (one sub-folder per run)."""
    scheduler_addresses: tuple[str, ...] = ()
    """Dask scheduler addresses a visitor may pick (none: the 'scheduler address' executor is off)."""
    max_atoms: int = 5000
    """Largest system (uploads and built-ins)."""
    max_steps: int = 1_000_000
    """Most LSD steps in one run."""
    max_saved_frames: int = 100_000
    """Most frames one run keeps in memory for the download (steps / save stride)."""
    max_workers: int = 4
    """Most workers of a local dask cluster."""
    max_upload_MB: float = 10.0
    """Largest structure upload."""
    upload_parse_seconds: float = 20.0
    """Time limit for checking one upload (parsed in a separate process)."""
    max_active_runs: int = 2
    """Runs computing at once on this server, all sessions together."""
    max_background_runs: int = 2
    """Runs that go on after their page closed ('keep running')."""
    max_sessions: int = 20
    """Pages open at once on this server (each builds its own plots and controller)."""
    allow_remote: bool = False
    """Serve sessions to clients that are not on this machine (set up authentication first)."""

    def __post_init__(self) -> None:
        for name in ("max_atoms", "max_steps", "max_saved_frames", "max_workers", "max_active_runs", "max_sessions"):
            if getattr(self, name) < 1:
                raise ValueError(f"dashboard setting {name} must be at least 1, got {getattr(self, name)}")
        if self.max_background_runs < 0:
            raise ValueError(f"dashboard setting max_background_runs must be >= 0, got {self.max_background_runs}")
        for name in ("max_upload_MB", "upload_parse_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"dashboard setting {name} must be positive, got {getattr(self, name)}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_MB * 1_000_000)

    @classmethod
    def from_sources(cls, environ: Mapping[str, str] | None = None,
                     argv: Sequence[str] | None = None) -> ServerPolicy:
        """Defaults, overridden by ``LSD_DASHBOARD_*`` variables, overridden by ``--name value`` arguments."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            text = environ.get(ENV_PREFIX + f.name.upper())
            if text is not None:
                values[f.name] = _convert(f.name, text)
        for name, text in vars(_parser().parse_known_args(list(argv or []))[0]).items():
            if text is not None:
                values[name] = _convert(name, text)
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v) for f in fields(self)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="panel serve app --args", add_help=False)
    for f in fields(ServerPolicy):
        parser.add_argument("--" + f.name.replace("_", "-").lower(), dest=f.name)
    return parser


def _convert(name: str, text: str) -> Any:
    kind = {f.name: f.type for f in fields(ServerPolicy)}[name]
    text = text.strip()
    try:
        if kind == "bool":
            lowered = text.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError("use true or false")
            return lowered in ("1", "true", "yes")
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "Path":
            return Path(text).expanduser()
        return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"dashboard setting {name}={text!r}: {exc}") from None


def is_loopback(address: str | None) -> bool:
    """Whether a client address is this machine (127.0.0.0/8 or ::1)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
