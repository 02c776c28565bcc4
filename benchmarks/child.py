"""A benchmark's child process: its failure becomes a ``TimbrescopeError`` (one line through
``errors.reported``), not a ``CalledProcessError`` traceback."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from timbrescope.errors import TimbrescopeError


def run(command: list[str]) -> subprocess.CompletedProcess:
    """``command`` run to its end, stdout and stderr captured as text; a non-zero exit raises with the child's last
    stderr line (its own one-line error, or a traceback's last line)."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise TimbrescopeError(failure(command, done.returncode, done.stderr))
    return done


def failure(command: list[str], code: int, stderr: str) -> str:
    """``"PROGRAM exited with code N: LAST STDERR LINE"``; PROGRAM is ``-m``'s module or the program's name."""
    program = command[command.index("-m") + 1] if "-m" in command else Path(command[0]).name
    lines = stderr.strip().splitlines()
    return f"{program} exited with code {code}" + (f": {lines[-1]}" if lines else "")


@contextmanager
def started(command: list[str], **options) -> Iterator[tuple[subprocess.Popen, Callable[[], TimbrescopeError]]]:
    """``(process, failed)``: ``subprocess.Popen(command, **options)`` with its stderr kept in a temporary file (a
    file, not a pipe: nobody reads it while the child runs), and ``failed()``, the error its exit makes, to raise."""
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stderr=errors, **options)

        def failed() -> TimbrescopeError:
            errors.seek(0)
            return TimbrescopeError(failure(command, process.returncode, errors.read()))

        yield process, failed
