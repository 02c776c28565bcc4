"""The machine a benchmark ran on, for its report's first line: CPU model, cores and widest vector unit.

Two machines of this project, both of 2 cores, ran a training step 2.3-2.8x apart and `identify` 1.8-2.7x apart (the
slower an AMD EPYC with AVX2 only; docs/BENCHMARKS.md, session 37), so a speed figure means little without its CPU.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def describe(cpuinfo: str | None = None, cores: int | None = None) -> str:
    """E.g. ``"AMD EPYC, 2 cores, AVX2"``: the ``model name`` and ``flags`` of ``cpuinfo`` (Linux's
    /proc/cpuinfo text; read when not given), else the platform's processor name and no vector unit."""
    if cpuinfo is None:
        cpuinfo = CPUINFO.read_text() if CPUINFO.is_file() else ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2" if flags else ""
    return ", ".join(part for part in (name, f"{cores or os.cpu_count()} cores", vector) if part)
