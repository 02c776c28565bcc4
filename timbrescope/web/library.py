"""A served folder of audio files: paths from requests resolved and confined to its root.

A request path is relative to the root. It is refused (``PathRefused``, HTTP 403) when it is absolute,
holds a ``..`` part or a NUL byte, or resolves (symbolic links followed) to a place outside the root;
it is ``PathMissing`` (HTTP 404) when nothing is there. Listings skip hidden names and links that leave
the root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from timbrescope.audio import is_audio_path
from timbrescope.errors import TimbrescopeError

SEARCH_LIMIT = 500  # files a search returns at most


class PathRefused(TimbrescopeError):
    """A library path that points outside the library (HTTP 403)."""


class PathMissing(TimbrescopeError):
    """A library path where there is no file or folder (HTTP 404)."""


@dataclass(frozen=True)
class Entry:
    """One audio file of the library: ``path`` relative to the root (POSIX), ``size`` in bytes, ``mtime`` in
    seconds since the epoch."""

    path: str
    size: int
    mtime: float


class Library:
    """The audio files under ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise PathMissing(f"{root}: no such folder")

    def resolve(self, relative: str, kind: str = "any") -> Path:
        """The real path of ``relative`` inside the root; ``kind`` "file" or "folder" requires one."""
        if "\x00" in relative or "\\" in relative:
            raise PathRefused(f"{relative!r}: not a library path")
        parts = PurePosixPath(relative)
        if parts.is_absolute() or ".." in parts.parts:
            raise PathRefused(f"{relative}: outside the library")
        target = (self.root / parts).resolve()
        if not target.is_relative_to(self.root):
            raise PathRefused(f"{relative}: outside the library")
        if not target.exists() or any(part.startswith(".") for part in parts.parts):
            raise PathMissing(f"{relative}: not in the library")
        if kind == "file" and not (target.is_file() and is_audio_path(target)):
            raise PathMissing(f"{relative}: not an audio file of the library")
        if kind == "folder" and not target.is_dir():
            raise PathMissing(f"{relative}: not a folder of the library")
        return target

    def listing(self, relative: str = "") -> dict:
        """The folders and audio files directly inside ``relative``, sorted by name."""
        folder = self.resolve(relative, "folder") if relative else self.root
        folders, files = [], []
        with os.scandir(folder) as entries:
            for item in sorted(entries, key=lambda e: e.name.lower()):
                if item.name.startswith(".") or not self._inside(item.path):
                    continue
                if item.is_dir():
                    folders.append(self._relative(item.path))
                elif item.is_file() and is_audio_path(item.name):
                    files.append(self._entry(item.path))
        return {"path": self._relative(folder) if relative else "", "folders": folders,
                "files": [vars(e) for e in files]}

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> dict:
        """Audio files anywhere in the library whose relative path contains every word of ``query``
        (case-insensitive), at most ``limit``."""
        words = query.lower().split()
        found: list[Entry] = []
        for folder, names, filenames in os.walk(self.root):
            names[:] = sorted(n for n in names if not n.startswith("."))
            for name in sorted(filenames):
                path = os.path.join(folder, name)
                relative = self._relative(path)
                if (not name.startswith(".") and is_audio_path(name) and all(w in relative.lower() for w in words)
                        and self._inside(path)):
                    found.append(self._entry(path))
                    if len(found) >= limit:
                        return {"query": query, "files": [vars(e) for e in found], "truncated": True}
        return {"query": query, "files": [vars(e) for e in found], "truncated": False}

    def _inside(self, path: str) -> bool:
        return Path(path).resolve().is_relative_to(self.root)

    def _relative(self, path: str | os.PathLike) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def _entry(self, path: str) -> Entry:
        stat = os.stat(path)
        return Entry(self._relative(path), stat.st_size, stat.st_mtime)
