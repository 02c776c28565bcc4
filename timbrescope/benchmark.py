"""``timbrescope benchmark``: train several registered models on the same training split, evaluate them
with the same code on the same test split (and on real recordings), and tabulate the results.

Per model: top-1 accuracy (single-label view of the test split), macro F1 and mAP (multi-label view),
real-audio top-1 (``realdev``, every row of a manifest), training time (wall clock, features
included), inference speed (seconds of test audio per second of wall clock while evaluating), the
number of learned parameters, and a learning curve (validation mAP against training examples).
A finished model's checkpoint and row are reused when the benchmark is run again into the same
folder (so a killed run resumes model by model; delete ``models/NAME.*`` to redo one).
Checkpoints trained elsewhere (e.g. the shipped model, trained on the same corpus without a
budget) can be added as rows of their own: scored the same way, with their own training time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from timbrescope.data.dataset import Dataset, example_length
from timbrescope.data.specs import open_dataset
from timbrescope.errors import ParameterError, TimbrescopeError
from timbrescope.evaluate import figures
from timbrescope.evaluate.evaluation import evaluate
from timbrescope.evaluate.page import figure, page
from timbrescope.fileio import atomic_write_text, ensure_writable_folder
from timbrescope.inference import Recognizer
from timbrescope.models import list_models
from timbrescope.models.registry import accepts_features
from timbrescope.train.learning_curve import learning_curve
from timbrescope.train.loop import TrainConfig, train
from timbrescope.train.recipe import Recipe, resolve_recipe

COLUMNS = [("model", "model"), ("top1", "top-1"), ("f1_macro", "macro-F1"), ("map", "mAP"),
           ("real_top1", "real-audio top-1"), ("train_seconds", "training time (s)"),
           ("speed", "inference (x real time)"), ("parameters", "parameters")]


def select_models(names: str) -> list[str]:
    """``all`` or a comma-separated list of registered names (ParameterError naming the unknown ones)."""
    known = list_models()
    chosen = known if names == "all" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        raise ParameterError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    return chosen


def parse_trained(specs: list[str]) -> dict[str, Path]:
    """``NAME=CKPT`` pairs -> {row name: checkpoint}; a ParameterError for a malformed pair, a name of a
    registered model (its row would be ambiguous) or a missing checkpoint."""
    trained = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ParameterError(f"--trained takes NAME=CHECKPOINT, got {spec!r}")
        if name in list_models() or name in trained:
            raise ParameterError(f"--trained row name {name!r} is already a model's row; choose another")
        if not Path(path).is_file():
            raise ParameterError(f"--trained {name}: no checkpoint at {path}")
        trained[name] = Path(path)
    return trained


def benchmark(data: str | Path | Dataset, models: list[str], out: Path, budget_minutes: float | None = None,
              epochs: int = 30, limit: int | None = None, realdev: str | None = None,
              curve_fractions: tuple[float, ...] = (0.25, 0.5), seed: int = 0,
              progress: Callable[[str], None] | None = None, trained: dict[str, Path] | None = None) -> dict:
    """Run the benchmark into folder ``out``; returns what ``out/benchmark.json`` holds. ``trained``
    maps row names to checkpoints trained outside the benchmark, scored as extra rows."""
    out = Path(out)
    ensure_writable_folder(out / "models")
    dataset = data if isinstance(data, Dataset) else open_dataset(data)
    real = open_dataset(realdev) if realdev else None
    cache: dict = {}
    rows = []
    for name in models:
        if progress:
            progress(name)
        if not dataset.has_audio and not accepts_features(name):
            rows.append({"model": name, "error": f"{dataset.name} holds precomputed features; {name} needs audio"})
            continue
        config = resolve_recipe({"seed": seed, "data": {"spec": str(dataset.root), "limit": limit or 0},
                                 "model": {"name": name},
                                 "schedule": {"epochs": epochs, "budget_minutes": budget_minutes or 0}}).config
        try:
            rows.append(_run_model(dataset, real, config, out, cache, curve_fractions))
        except TimbrescopeError as exc:
            rows.append({"model": name, "error": str(exc)})
    for name, checkpoint in (trained or {}).items():
        if progress:
            progress(name)
        try:
            recognizer = Recognizer(checkpoint)
            summary = recognizer.meta["training"]
            rows.append(_score(dataset, real, recognizer, name, summary) | {
                "checkpoint": str(checkpoint), "trained_on": summary.get("data"),
                "learning_curve": [_full_point(name, summary)]})
        except TimbrescopeError as exc:
            rows.append({"model": name, "error": str(exc)})
    result = {"data": str(dataset.root), "dataset": dataset.name, "realdev": realdev, "budget_minutes": budget_minutes,
              "epochs": epochs, "limit": limit, "models": rows}
    atomic_write_text(out / "benchmark.json", json.dumps(result, indent=1))
    atomic_write_text(out / "benchmark.md", to_markdown(result))
    points = [p for row in rows for p in row.get("learning_curve", [])]
    if points:
        figures.learning_curve(points, out / "learning_curves.png")
    atomic_write_text(out / "report.html", _html(result, out / "learning_curves.png" if points else None))
    return result


def _run_model(dataset: Dataset, real: Dataset | None, config: TrainConfig, out: Path, cache: dict,
               curve_fractions: tuple[float, ...]) -> dict:
    """One model's row: trained (or its checkpoint reused), scored, with its learning curve; the row is
    kept in ``models/<name>.json`` so that a killed benchmark resumes model by model."""
    checkpoint, row_file = out / "models" / f"{config.model}.ckpt", out / "models" / f"{config.model}.json"
    if checkpoint.exists() and row_file.exists():
        return json.loads(row_file.read_text())
    started = time.perf_counter()
    reused = checkpoint.exists()
    if not reused:
        summary = train(dataset, checkpoint, config, feature_cache=cache)
        summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    recognizer = Recognizer(checkpoint)
    if reused:
        summary = recognizer.meta["training"]
    row = _score(dataset, real, recognizer, config.model, summary)
    row["learning_curve"] = _learning_curve(dataset, config, out, cache, curve_fractions, summary)
    atomic_write_text(row_file, json.dumps(row))
    return row


def _score(dataset: Dataset, real: Dataset | None, recognizer: Recognizer, name: str, summary: dict) -> dict:
    """A trained model's row: test-split metrics, real-audio top-1, speed, size, training figures."""
    started = time.perf_counter()
    metrics, _ = evaluate(dataset, recognizer, "test")
    seconds = time.perf_counter() - started
    test = dataset.split("test")
    audio_seconds = sum(example_length(ex) for ex in test) if dataset.has_audio else None
    row = {"model": name, "top1": metrics.get("single_label", {}).get("accuracy"),
           "f1_macro": metrics.get("multi_label", {}).get("f1_macro"), "map": metrics.get("multi_label", {}).get("map"),
           "real_top1": None, "train_seconds": summary.get("wall_seconds", summary["seconds"]),
           "speed": round(audio_seconds / seconds, 1) if audio_seconds else None,
           "parameters": parameter_count(recognizer.network), "best_epoch": summary.get("best_epoch"),
           "epochs_run": summary.get("epochs_run"), "valid_map": summary["valid_map"], "test": metrics}
    if real is not None and recognizer.takes_audio:
        real_metrics, _ = evaluate(real, recognizer, "all")
        row["real_top1"] = real_metrics.get("single_label", {}).get("accuracy")
        row["realdev"] = real_metrics
    return row


def _full_point(name: str, summary: dict) -> dict:
    """The learning-curve point of a run on the whole training split."""
    return {"model": name, "fraction": 1.0, "train_examples": summary["train_clips"], "valid_map": summary["valid_map"],
            "seconds": summary["seconds"]}


def _learning_curve(dataset: Dataset, config: TrainConfig, out: Path, cache: dict, fractions: tuple[float, ...],
                    full: dict) -> list[dict]:
    """Validation mAP of runs on nested random subsets of the training split, plus the full run."""
    partial = tuple(f for f in fractions if 0 < f < 1)
    points = learning_curve(Recipe(str(dataset.root), config), out / "models", partial, feature_cache=cache,
                            prefix=f"{config.model}.curve", dataset=dataset) if partial else []
    return points + [_full_point(config.model, full)]


def parameter_count(network: torch.nn.Module) -> int:
    """Learned numbers: a network's parameters, or the fitted arrays of a scikit-learn pipeline (its
    coefficients, stored training examples or tree nodes)."""
    pipeline = getattr(network, "pipeline", None)
    if pipeline is None:
        return int(sum(p.numel() for p in network.parameters()))
    return _fitted_size(pipeline, set())


_STORED = ("_fit_X", "_y")  # a neighbours model's training examples and their labels (private in scikit-learn)


def _fitted_size(obj, seen: set) -> int:
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.size) if obj.dtype != object else sum(_fitted_size(x, seen) for x in obj.ravel())
    if isinstance(obj, (list, tuple)):
        return sum(_fitted_size(x, seen) for x in obj)
    if hasattr(obj, "node_count") and hasattr(obj, "threshold"):  # a fitted tree: feature, threshold, value
        return int(obj.node_count * 2 + obj.value.size)
    if hasattr(obj, "get_params"):
        fitted = [v for k, v in vars(obj).items() if (k.endswith("_") and not k.startswith("_")) or k in _STORED]
        steps = getattr(obj, "steps", [])
        return sum(_fitted_size(v, seen) for v in fitted) + sum(_fitted_size(step, seen) for step in steps)
    return 0


def to_markdown(result: dict) -> str:
    """The benchmark table (models as rows); failed models show their error."""
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    for row in result["models"]:
        if "error" in row:
            lines.append(f"| {row['model']} | failed: {row['error']} |" + " |" * (len(COLUMNS) - 2))
            continue
        lines.append("| " + " | ".join("-" if row[key] is None else _FORMATS.get(key, "{}").format(row[key])
                                       for key, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


_FORMATS = {"top1": "{:.3f}", "f1_macro": "{:.3f}", "map": "{:.3f}", "real_top1": "{:.3f}",
            "train_seconds": "{:,.1f}", "speed": "{:,.0f}", "parameters": "{:,}"}


def _html(result: dict, curve: Path | None) -> str:
    import html

    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in line.strip("|").split("|")) + "</tr>"
                   for line in to_markdown(result).splitlines()[2:])
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    image = "" if curve is None else figure(curve, "Learning curves: validation mAP against training examples")
    return page(f"timbrescope benchmark: {result['dataset']}", f"""<h1>Benchmark on {html.escape(result['dataset'])}</h1>
<p>Data {html.escape(result['data'])}: trained on its train split, scored on its test split; real-audio top-1 on
{html.escape(result['realdev'] or 'no real recordings (none given)')}. Budget per model:
{result['budget_minutes'] or 'none'} min, at most {result['epochs']} epochs.</p>
<table><tr>{head}</tr>{rows}</table>{image}<p>Every number is in benchmark.json beside this page.</p>""")
