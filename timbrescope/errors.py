"""One exception family for every user-facing failure.

The CLI and the benchmark scripts run through ``reported``, which turns any ``TimbrescopeError`` into a one-line
message on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

EXIT_USAGE_OR_DATA = 2


class TimbrescopeError(Exception):
    """Base class of every error timbrescope raises on purpose."""


class ParameterError(TimbrescopeError, ValueError):
    """An argument breaks a documented rule; the message states the rule and the value."""


class AudioError(TimbrescopeError):
    """An audio file or array cannot be used; the message names the file and the reason."""


class DataError(TimbrescopeError):
    """A dataset, corpus or manifest is missing, incomplete or malformed."""


class ModelError(TimbrescopeError):
    """A model or checkpoint cannot be built, loaded or used."""


def reported(run: Callable[[], int | None], program: str) -> int:
    """The exit code of ``run()`` (0 for None); a ``TimbrescopeError`` becomes ``PROGRAM: error: …`` on stderr and
    code 2, Ctrl-C code 130, and output piped into a reader that stops early (``head``) ends quietly with 0."""
    try:
        return run() or 0
    except TimbrescopeError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE_OR_DATA
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
