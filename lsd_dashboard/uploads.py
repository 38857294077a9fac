"""Structure uploads: checked as data, parsed in a separate process with time and memory limits.

An upload is untrusted: its size is checked before it is stored, an XYZ count line is
checked against the file size before any parser runs or any array is allocated, and the file
is then parsed by ``python -m lsd_dashboard.uploads`` (a child process with an
address-space limit that is killed at the time limit), so a hostile file can neither
freeze the server's event loop nor exhaust its memory. Each session keeps its
uploads in one private temporary folder (mode 0700), removed when the session ends.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lsd_engine.systems import StructureError, check_xyz_counts

#: Upload formats the page accepts (ASE readers that parse text and never unpickle).
UPLOAD_SUFFIXES = (".pdb", ".xyz", ".extxyz", ".cif", ".vasp", ".gro", ".mol")
#: Address-space limit of the parsing process (bytes).
PARSER_MEMORY_BYTES = 3 * 1024**3


class UploadError(ValueError):
    """An upload that is refused; the message says why."""


def safe_filename(filename: str) -> str:
    """The upload's base name, reduced to letters, digits, ``._-`` and spaces, with an allowed suffix."""
    name = Path(str(filename or "")).name
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .") or "structure"
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise UploadError(f"upload {name!r}: only {', '.join(UPLOAD_SUFFIXES)} structure files are accepted")
    return name[:100]


def check_upload(filename: str, data: bytes, max_bytes: int) -> str:
    """Cheap checks before the upload is stored: name, suffix, size; returns the safe file name."""
    name = safe_filename(filename)
    if len(data) > max_bytes:
        raise UploadError(f"upload {name}: {len(data) / 1e6:.1f} MB is larger than this server's limit of "
                          f"{max_bytes / 1e6:.1f} MB")
    if not data.strip():
        raise UploadError(f"upload {name}: the file is empty")
    return name


def check_stored(path: Path, max_atoms: int) -> None:
    """Before any parser runs: an XYZ file's count lines against its size and ``max_atoms``
    (``lsd_engine.systems.check_xyz_counts``), with the server's folder left out of the message."""
    if path.suffix.lower() not in (".xyz", ".extxyz"):
        return
    try:
        check_xyz_counts(path, 0, max_atoms)
    except StructureError as exc:
        raise UploadError(f"upload {str(exc).replace(str(path), path.name)}") from None


class UploadFolder:
    """One session's private folder for uploads, removed by :meth:`remove` (at session end)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def store(self, name: str, data: bytes) -> Path:
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix="lsd-upload-"))
        for old in self.path.iterdir():  # one structure per session: the newest upload
            old.unlink()
        path = self.path / name
        path.write_bytes(data)
        return path

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def parse_in_subprocess(path: Path, max_atoms: int, timeout_s: float) -> dict:
    """Parse ``path`` in a child process; returns ``{"n_atoms", "formula"}`` or raises :class:`UploadError`."""
    command = [sys.executable, "-m", "lsd_dashboard.uploads", str(path), str(max_atoms)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise UploadError(f"upload {path.name}: reading it took longer than {timeout_s:g} s; refused") from None
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        reason = "it ran out of memory" if "MemoryError" in done.stderr else f"exit status {done.returncode}"
        raise UploadError(f"upload {path.name}: could not be read ({reason})") from None
    if "error" in report:
        raise UploadError(f"upload {path.name}: {report['error']}")
    return report


def _child(path: str, max_atoms: int) -> dict:
    """Runs in the child: read the structure (size first, then the engine's checks) and report its size."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (PARSER_MEMORY_BYTES, PARSER_MEMORY_BYTES))
    import ase.io

    try:
        n_atoms = len(ase.io.read(path, index=0))
    except MemoryError:
        return {"error": "reading it needs more memory than this server allows"}
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem, reported in one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"error": f"not a readable {Path(path).suffix} file ({text.replace(str(path), Path(path).name)})"}
    if n_atoms > max_atoms:
        return {"error": f"{n_atoms} atoms; this server allows at most {max_atoms}"}
    try:
        from lsd_engine.systems import load_structure

        atoms = load_structure(path)
    except MemoryError:
        return {"error": "reading it needs more memory than this server allows"}
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem, reported in one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {"error": text.replace(str(path), Path(path).name)}
    return {"n_atoms": len(atoms), "formula": atoms.get_chemical_formula()}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]))))
