"""Layering: the model registry loads no learning or theory code, and no module imports another's private names."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lsd_engine"


def test_listing_models_loads_neither_learning_nor_theory():
    code = ("import json, sys, lsd_engine.models as m; names = [s.name for s in m.available()]; "
            "print(json.dumps([names, sorted(k for k in sys.modules if k.startswith('lsd_engine'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    names, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "distilled" in names and "amber14" in names  # the distilled draft is listed, lazily
    heavy = [m for m in loaded if m.startswith(("lsd_engine.learning", "lsd_engine.theory", "lsd_engine.distill",
                                                "lsd_engine.adaptive", "lsd_engine.runconfig"))]
    assert heavy == [], heavy


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
                if private:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {', '.join(private)}")
    assert offenders == [], offenders


def test_the_run_loop_and_both_drivers_use_only_public_members_of_other_objects():
    offenders = []
    for name in ("simulation.py", "reporters.py", "speculative.py", "streaming.py", "rounds.py"):
        path = PACKAGE / name
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                offenders.append(f"{name}:{node.lineno} .{node.attr}")
    assert offenders == [], offenders
