"""Intervals: the one place where runs are found and joined (note activity, sounding audio, segments)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def join_intervals(intervals: Iterable[tuple[float, float]], gap: float) -> list[tuple[float, float]]:
    """``(start, end)`` pairs, sorted, with those that overlap or lie at most ``gap`` apart joined."""
    joined: list[list[float]] = []
    for start, end in sorted(intervals):
        if joined and start - joined[-1][1] <= gap:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    return [(start, end) for start, end in joined]


def runs(on: np.ndarray) -> list[tuple[int, int]]:
    """``(first, after-last)`` index pairs of the runs of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], np.asarray(on, bool), [False]]).astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
