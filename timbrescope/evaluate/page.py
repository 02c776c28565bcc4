"""One self-contained HTML page (no external asset): the frame of evaluation reports and benchmark pages."""

from __future__ import annotations

import base64
import html
from pathlib import Path

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}"
         "figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:90%;color:#555}")


def page(title: str, body: str) -> str:
    """A whole HTML document: ``title`` (plain text, escaped here) and ``body`` (HTML)."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def figure(path: Path, caption: str) -> str:
    """A PNG embedded in the page, with its caption (plain text)."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
