"""Data specs: ``nsynth:/path``, ``irmas:/path``, ..., ``folder:/path``, ``manifest:/file.csv``, or a bare
path (a rendered corpus folder, a ``.csv``/``.jsonl`` manifest, or a folder of labelled recordings)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from timbrescope.data import folder, irmas, manifest, medley_solos_db, musicnet, nsynth, openmic2018, rendered
from timbrescope.data import uiowa_mis
from timbrescope.data.dataset import Dataset
from timbrescope.errors import DataError

PUBLIC_DATASETS: dict[str, ModuleType] = {module.NAME: module for module in (
    nsynth, irmas, medley_solos_db, musicnet, openmic2018, uiowa_mis)}
_ALIASES = {"medley-solos-db": "medley_solos_db", "medley": "medley_solos_db", "openmic": "openmic2018",
            "openmic-2018": "openmic2018", "uiowa": "uiowa_mis"}
_LOCAL = {"folder": folder, "manifest": manifest, "rendered": rendered}


def open_dataset(spec: str | Path) -> Dataset:
    """The dataset a spec names (DataError with what was expected where, if it is not there)."""
    text = str(spec)
    kind, _, rest = text.partition(":")
    name = _ALIASES.get(kind.lower(), kind.lower())
    if rest and name in PUBLIC_DATASETS:
        return PUBLIC_DATASETS[name].load_dataset(Path(rest).expanduser())
    if rest and name in _LOCAL:
        return _LOCAL[name].load_dataset(Path(rest).expanduser())
    if rest and not Path(text).exists() and len(kind) > 1:
        raise DataError(f"unknown data spec {text!r}: use NAME:PATH with NAME one of "
                        f"{', '.join([*PUBLIC_DATASETS, *_LOCAL])}, or a corpus folder, manifest or label folder")
    path = Path(text).expanduser()
    if path.is_file():
        return manifest.load_dataset(path)
    if (path / "manifest.jsonl").is_file():
        return rendered.load_dataset(path)
    if path.is_dir():
        return folder.load_dataset(path)
    raise DataError(f"{text}: no such corpus folder, manifest or label folder")
