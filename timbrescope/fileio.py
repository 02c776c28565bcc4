"""Safe writes: nothing half-written is ever left under a final name."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from timbrescope.errors import DataError


def temporary_path(path: Path, shared: bool = False) -> Path:
    """The hidden sibling a file is written to before being renamed to ``path``: always the same name,
    so a killed writer's leftover is overwritten by the next write, or (``shared``: several processes
    may write the same file at once) one per process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp" if shared else f".{path.name}.tmp")


def atomic_write(path: Path, write: Callable[[Path], object], shared: bool = False) -> None:
    """Have ``write(tmp)`` write the file at a temporary path beside ``path`` (``temporary_path``), then
    rename it into place; if ``write`` fails, the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = temporary_path(path, shared)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str, shared: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (``atomic_write``)."""
    atomic_write(path, lambda tmp: tmp.write_text(text), shared)


def ensure_writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and prove it writable, so a job fails before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"output folder {folder} is not writable ({exc.strerror or exc})") from None
