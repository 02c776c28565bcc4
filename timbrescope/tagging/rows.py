"""One file -> one tag row and its segments (``table`` describes the columns)."""

from __future__ import annotations

import time

from timbrescope.errors import TimbrescopeError
from timbrescope.inference import Recognizer, default_onnx_path
from timbrescope.tagging.table import stat
from timbrescope.taxonomy import source_of


def tag_file(recognizer: Recognizer, path: str) -> tuple[dict, list[dict]]:
    """Identify ``path``; a file that fails is a row with its one-line ``error`` (never an exception)."""
    size, mtime = stat(path)
    row = {"path": path, "size": size, "mtime": mtime, "duration": None, "format": None, "model": model_name(recognizer),
           "detected": [], "families": [], "sources": [], **{f"score_{label}": None for label in recognizer.labels},
           "warnings": [], "error": None}
    segments: list[dict] = []
    try:
        result = recognizer.identify(path)
    except TimbrescopeError as exc:
        row["error"] = str(exc)
    except Exception as exc:  # a decoder's own failure: this file's error, not the job's
        row["error"] = f"{path}: analysis failed ({type(exc).__name__}: {exc})".splitlines()[0]
    else:
        detected = result.detected()
        row.update(duration=round(result.duration, 3), format=result.format, warnings=result.warnings,
                   detected=[item["label"] for item in detected],
                   families=sorted({item["family"] for item in detected}),
                   sources=sorted({source_of(item["label"]) for item in detected}),
                   **{f"score_{item['label']}": item["score"] for item in result.instruments})
        segments = result.segments
    row["tagged"] = time.time()
    return row, [{"path": path, "tagged": row["tagged"], **segment} for segment in segments]


def model_name(recognizer: Recognizer) -> str:
    """The model as rows name it: ``default`` for the shipped one, else its file name."""
    return "default" if recognizer.model_path == default_onnx_path() else recognizer.model_path.name
