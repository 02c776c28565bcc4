"""Safe writes: nothing half-written is ever left under a final name."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from timbrescope.errors import DataError


def temporary_path(path: Path) -> Path:
    """The hidden sibling a file is written to before being renamed to ``path`` (one per process, so
    that workers writing the same file do not write into each other's)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Have ``write(tmp)`` write the file at a temporary path beside ``path``, then rename it into place;
    if ``write`` fails, the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``atomic_write``)."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def ensure_writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed and prove it writable, so a job fails before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"output folder {folder} is not writable ({exc.strerror or exc})") from None
