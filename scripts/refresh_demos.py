#!/usr/bin/env python3
"""Execute the teaching notebooks in demos/ in place and store their outputs, kept small.

    python3 scripts/refresh_demos.py                 # every demos/*.ipynb, full settings
    python3 scripts/refresh_demos.py demos/04_*.ipynb

Each notebook runs top to bottom in a fresh kernel (working directory demos/, full settings:
LSD_DEMO_FAST is removed from the kernel's environment), two at a time. Then its outputs are
slimmed so the stored file stays small and reviewable: of every rich output only the MIME types
in ``KEEP_MIME`` survive (text, PNG figures, small HTML without scripts), so the JavaScript,
Bokeh/Panel and widget bundles of the interactive cells are dropped (their text form stays; the
notebooks say so where it matters; an output with nothing left is removed), notebook-level widget
state is removed, and so are the per-cell execution timings. A SHA-256 of the code cells' sources is written to the notebook's metadata,
so tests/test_demos.py can tell when a cell was edited without refreshing. Before anything is
written the result is checked (``problems``): executed in order, no errors, a figure for each
``plt.show()``, at most ``MAX_NOTEBOOK_BYTES``. Nothing is written for a notebook that fails.
Exit status 0 when every notebook was refreshed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import nbformat
from nbclient import NotebookClient

DEMOS = Path(__file__).resolve().parents[1] / "demos"
#: The largest stored notebook, in bytes.
MAX_NOTEBOOK_BYTES = 300_000
#: Rich-output MIME types that are stored; anything else (JavaScript, widget views, Bokeh/Panel/HoloViews
#: bundles) is dropped.
KEEP_MIME = ("text/plain", "image/png", "text/markdown", "text/latex", "text/html")
#: text/html outputs larger than this are dropped too (a Panel or Bokeh dump, not a table).
MAX_HTML_BYTES = 20_000
#: Notebooks executing at once (each in its own kernel).
CONCURRENCY = 2
#: Seconds one cell may run.
CELL_TIMEOUT_S = 600
#: The notebook metadata key with the refresh record.
METADATA_KEY = "lsd_demo"


def notebooks() -> list[Path]:
    """Every notebook in demos/, in name order."""
    return sorted(DEMOS.glob("*.ipynb"))


def code_digest(notebook: Any) -> str:
    """SHA-256 of the code cells' sources (markdown edits need no re-execution)."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode())
            digest.update(b"\0")
    return digest.hexdigest()


def kernel_env(fast: bool) -> dict[str, str]:
    """The environment of a demo kernel: this process's, with LSD_DEMO_FAST=1 or without it."""
    env = {k: v for k, v in os.environ.items() if k != "LSD_DEMO_FAST"}
    if fast:
        env["LSD_DEMO_FAST"] = "1"
    return env


async def _execute_one(path: Path, fast: bool, gate: asyncio.Semaphore) -> tuple[Any, float]:
    notebook = nbformat.read(path, as_version=4)
    async with gate:
        start = time.perf_counter()
        client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        await client.async_execute(env=kernel_env(fast))
        return notebook, time.perf_counter() - start


async def _execute_all(paths: list[Path], fast: bool, concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)
    return await asyncio.gather(*(_execute_one(p, fast, gate) for p in paths), return_exceptions=True)


def execute(paths: Iterable[Path], fast: bool = False, concurrency: int = CONCURRENCY) -> list[Any]:
    """Run each notebook top to bottom in its own kernel, ``concurrency`` at a time.

    Returns, per path, ``(executed notebook, seconds)`` or the exception that stopped it
    (nbclient's ``CellExecutionError`` names the cell). The files are not touched.
    """
    return asyncio.run(_execute_all(list(paths), fast, concurrency))


def kept(mime: str, value: Any) -> bool:
    """Whether a rich output of this MIME type and value is stored."""
    if mime not in KEEP_MIME:
        return False
    if mime == "text/html":  # a small static table, not a Panel/Bokeh bundle
        return len(str(value)) <= MAX_HTML_BYTES and "<script" not in str(value)
    return True


def slim(notebook: Any) -> list[str]:
    """Drop what must not be stored (see the module doc) in place; returns what was dropped, for the log.

    An output left with nothing to show (no data, or only empty text) is removed.
    """
    dropped: list[str] = []
    if notebook.metadata.pop("widgets", None) is not None:
        dropped.append("widget state")
    for index, cell in enumerate(notebook.cells):
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.outputs:
            data = output.get("data")
            if data is not None:
                for mime in list(data):
                    if not kept(mime, data[mime]):
                        dropped.append(f"cell {index}: {mime}")
                        del data[mime]
                metadata = output.get("metadata", {})
                for key in list(metadata):
                    if key not in data:
                        del metadata[key]
                if not any(str(value).strip() for value in data.values()):
                    continue
            outputs.append(output)
        cell.outputs = outputs
    notebook.metadata[METADATA_KEY] = {"refreshed_by": "scripts/refresh_demos.py", "code_sha256": code_digest(notebook)}
    return dropped


def figures_expected(cell: Any) -> int:
    """Figures a code cell must have stored: one per ``plt.show()``."""
    return cell.source.count("plt.show()")


def problems(notebook: Any, size_bytes: int | None = None) -> list[str]:
    """What is wrong with a stored (executed and slimmed) notebook; empty when it is fine."""
    found = []
    code = [c for c in notebook.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        found.append(f"code cells not executed once, top to bottom, in one kernel (execution counts {counts})")
    record = notebook.metadata.get(METADATA_KEY, {})
    if record.get("code_sha256") != code_digest(notebook):
        found.append("code cells changed since the outputs were stored")
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        for output in outputs:
            if output.get("output_type") == "error":
                found.append(f"cell {index} stored an error: {output.get('ename')}: {output.get('evalue')}")
            for mime, value in output.get("data", {}).items():
                if not kept(mime, value):
                    found.append(f"cell {index} stores {mime} that should have been dropped")
        pngs = sum("image/png" in o.get("data", {}) for o in outputs)
        if pngs < figures_expected(cell):
            found.append(f"cell {index} calls plt.show() {figures_expected(cell)} times but stores {pngs} figures")
    if "widgets" in notebook.metadata:
        found.append("notebook metadata stores widget state")
    if size_bytes is not None and size_bytes > MAX_NOTEBOOK_BYTES:
        found.append(f"{size_bytes} bytes, more than the limit of {MAX_NOTEBOOK_BYTES}")
    return found


def stored_size(notebook: Any) -> int:
    """Bytes the notebook takes as nbformat writes it."""
    return len(nbformat.writes(notebook).encode()) + 1  # nbformat.write adds a final newline


def refresh(paths: list[Path], concurrency: int = CONCURRENCY) -> int:
    """Execute, slim, check and write each notebook; returns how many failed."""
    failed = 0
    start = time.perf_counter()
    for path, outcome in zip(paths, execute(paths, fast=False, concurrency=concurrency)):
        if isinstance(outcome, BaseException):
            failed += 1
            print(f"{path.name}: FAILED, not written:\n{outcome}", file=sys.stderr)
            continue
        notebook, seconds = outcome
        dropped = slim(notebook)
        size = stored_size(notebook)
        wrong = problems(notebook, size)
        if wrong:
            failed += 1
            print(f"{path.name}: FAILED, not written: " + "; ".join(wrong), file=sys.stderr)
            continue
        nbformat.write(notebook, path)
        note = f", dropped {len(dropped)} outputs ({', '.join(sorted({d.split(': ')[-1] for d in dropped}))})" \
            if dropped else ""
        print(f"{path.name}: {seconds:.0f} s, {size / 1000:.0f} kB{note}")
    print(f"refreshed {len(paths) - failed} of {len(paths)} notebooks in {time.perf_counter() - start:.0f} s")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to refresh (default: demos/*.ipynb)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="notebooks executing at once")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or notebooks()
    missing = [str(p) for p in paths if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        print(f"refresh_demos: not a notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.concurrency < 1:
        print(f"refresh_demos: --concurrency must be at least 1, got {args.concurrency}", file=sys.stderr)
        return 2
    return 1 if refresh(paths, args.concurrency) else 0


if __name__ == "__main__":
    sys.exit(main())
