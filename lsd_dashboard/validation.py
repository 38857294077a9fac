"""Run settings from a visitor (URL arguments, widgets) checked against the allowlist and the server's limits.

A served page's widgets and URL are both in the visitor's hands: a value can be anything
a crafted request sends, whatever the widget offers. So every setting is checked here
before a run starts: model names only from the page's choices, model options only from
:data:`lsd_engine.models.options.SAFE_OPTIONS`, built-in systems or the session's own
upload, sizes and counts within the operator's :class:`~lsd_dashboard.policy.ServerPolicy`,
and scheduler addresses only from the operator's list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lsd_engine.models.options import UnsafeOptionError, check_safe_options
from lsd_engine.runconfig import BUILTIN_SYSTEMS

from . import choices
from .policy import ServerPolicy

#: Settings a URL may give (``/app?target=amber14&n_steps=500``). Files, folders and scheduler
#: addresses are not among them: those come from uploads and the operator's configuration.
URL_SETTINGS = (
    "system", "draft", "target", "draft_options", "target_options", "temperature_K", "timestep_fs",
    "friction_per_ps", "hydrogen_mass_amu", "lookahead", "error_correction", "draft_learning",
    "adaptive_lookahead", "min_lookahead", "mode", "device", "executor", "n_workers", "n_steps", "seed", "reference",
    "draft_reference", "reference_share", "block_seconds", "save_stride", "keep_running",
)
MAX_TEXT_LENGTH = 200
MAX_SEED = 2**53 - 1  # the largest integer a browser widget holds exactly


def settings_problems(cfg: Mapping[str, Any], policy: ServerPolicy, *, custom: set[str], n_atoms: int | None,
                      uploaded: bool) -> list[str]:
    """Why these settings may not run on this server (empty when they may).

    ``custom``: the roles ('atoms', 'draft', 'target') given as Python objects (trusted, from a notebook);
    ``n_atoms``: the system's size when it could be built; ``uploaded``: whether the session has an upload.
    """
    problems = []
    system = cfg["system"]
    if system == choices.CUSTOM:
        if "atoms" not in custom:
            problems.append("System: 'custom (Python)' needs controller.use(atoms=...)")
    elif system == choices.UPLOADED:
        if not uploaded:
            problems.append("System: upload a structure file first")
    elif system not in BUILTIN_SYSTEMS:
        problems.append(f"System: {str(system)[:60]!r} is not one of the offered systems")
    if n_atoms is not None and n_atoms > policy.max_atoms and "atoms" not in custom:
        problems.append(f"System: {n_atoms} atoms; this server allows at most {policy.max_atoms} (max_atoms)")
    for role in ("draft", "target"):
        name, offered = cfg[role], choices.role_choices(role)
        text = str(cfg[f"{role}_options"] or "")
        if name == choices.CUSTOM:
            if role not in custom:
                problems.append(f"{role.capitalize()}: 'custom (Python)' needs controller.use({role}=...)")
            continue
        if name == choices.AUTO_DRAFT and role == "draft":
            if text.strip():
                problems.append("Draft options: the automatic draft takes none; choose a named draft to set them")
            continue
        if name not in offered:
            problems.append(f"{role.capitalize()}: {str(name)[:60]!r} is not one of the offered models "
                            f"({', '.join(offered)})")
            continue
        if len(text) > MAX_TEXT_LENGTH:
            problems.append(f"{role.capitalize()} options: longer than {MAX_TEXT_LENGTH} characters")
            continue
        try:
            check_safe_options(name, choices.parse_options(text))
        except (UnsafeOptionError, ValueError) as exc:
            problems.append(f"{role.capitalize()} options: {exc}")
    problems.extend(_count_problems(cfg, policy))
    return problems


def _count_problems(cfg: Mapping[str, Any], policy: ServerPolicy) -> list[str]:
    problems = []
    if cfg["n_steps"] > policy.max_steps:
        problems.append(f"Steps: {cfg['n_steps']} is more than this server allows ({policy.max_steps}, max_steps)")
    elif cfg["n_steps"] // max(1, cfg["save_stride"]) > policy.max_saved_frames:
        stride = -(-cfg["n_steps"] // policy.max_saved_frames)
        problems.append(f"Save every n-th frame: {cfg['n_steps']} steps would keep more than "
                        f"{policy.max_saved_frames} frames (max_saved_frames); save every {stride}th frame or more")
    if not 0 <= cfg["seed"] <= MAX_SEED:
        problems.append(f"Seed: must be between 0 and {MAX_SEED}")
    if cfg["executor"] == choices.LOCAL_DASK and cfg["n_workers"] > policy.max_workers:
        problems.append(f"Dask workers: {cfg['n_workers']} is more than this server allows "
                        f"({policy.max_workers}, max_workers)")
    if cfg["executor"] == choices.SCHEDULER and cfg["scheduler_address"] not in policy.scheduler_addresses:
        allowed = ", ".join(policy.scheduler_addresses) or "none are configured"
        problems.append(f"Scheduler address: only the addresses the server's operator configured may be used "
                        f"(scheduler_addresses: {allowed})")
    return problems
