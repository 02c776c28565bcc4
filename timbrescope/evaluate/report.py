"""The evaluation report: ``metrics.json``, PNG figures and a self-contained ``report.html`` (figures
embedded as data URIs, no script, opens offline). Files are written atomically."""

from __future__ import annotations

import html
import json
from pathlib import Path

from timbrescope.evaluate.page import figure, page
from timbrescope.evaluate import figures
from timbrescope.fileio import atomic_write_text, ensure_writable_folder
from timbrescope.errors import TimbrescopeError

HEADLINE = [("single_label", "accuracy", "accuracy (top-1)"), ("single_label", "top3_accuracy", "top-3 accuracy"),
            ("single_label", "macro", "macro F1"), ("multi_label", "map", "mAP"),
            ("multi_label", "roc_auc_macro", "ROC AUC (macro)"), ("multi_label", "f1_micro", "F1 micro"),
            ("multi_label", "f1_macro", "F1 macro"), ("multi_label", "f1_samples", "F1 samples"),
            ("multi_label", "exact_match", "exact match"), ("multi_label", "hamming_loss", "Hamming loss"),
            ("multi_label", "lrap", "label-ranking AP"), ("frames", "frame_f1_micro", "frame F1 (micro)"),
            ("frames", "segment_f1_micro", "segment F1 (1 s, micro)"), ("composer", "accuracy", "composer accuracy"),
            ("source", "accuracy", "source accuracy (acoustic / electronic / synthetic)")]


def write_report(metrics: dict, details: dict, recognizer, out: Path) -> dict[str, Path]:
    """Write the report of one evaluation into folder ``out``; return the paths written by name."""
    out = Path(out)
    ensure_writable_folder(out)
    written = {"metrics": out / "metrics.json"}
    atomic_write_text(written["metrics"], json.dumps(metrics, indent=1))
    sections = []  # (title, png path)
    if "single_label" in metrics:
        sections.append(("Confusion matrix", figures.confusion(metrics["single_label"], out / "confusion.png")))
    if "grouped" in metrics and "single_label" in metrics["grouped"]:
        sections.append(("Confusion matrix, grouped", figures.confusion(
            metrics["grouped"]["single_label"], out / "confusion_grouped.png", "Grouped confusion (row-normalised)")))
    if "multi_label" in metrics:
        per_label = metrics["multi_label"]["per_label"]
        sections.append(("Average precision per label", figures.average_precision_bars(per_label, out / "ap.png")))
        if details.get("roc"):
            sections.append(("ROC curves", figures.roc(details["roc"], per_label, out / "roc.png")))
    sections.append(("Class distribution", figures.class_distribution(metrics["class_distribution"],
                                                                      out / "distribution.png")))
    runs = training_histories(recognizer)
    if runs:
        sections.append(("Training log", figures.training_curves(runs, out / "training.png")))
    for i, (example, frames, caption) in enumerate(details.get("errors", [])):
        try:
            audio = example.load_audio(recognizer.sample_rate)
        except TimbrescopeError:
            continue
        sections.append((f"Error {i + 1}: {caption}", figures.error_example(
            audio, recognizer.sample_rate, frames, recognizer.hop_seconds, list(recognizer.labels), caption,
            out / f"error_{i + 1}.png")))
    written.update({path.stem: path for _, path in sections})
    written["report"] = out / "report.html"
    atomic_write_text(written["report"], _html(metrics, sections))
    return written


def training_histories(recognizer) -> list[tuple[str, list[dict]]]:
    """The per-epoch logs of the model's training as (name, epochs) pairs: each member's of an ensemble
    ("member 1 (seed 1)", …), else one ("", its log), stored in the checkpoint or in the log file beside it."""
    training = recognizer.meta.get("training", {})
    if training.get("members"):
        return [(f"member {n} (seed {m['seed']})", m["history"]) for n, m in enumerate(training["members"], start=1)]
    history = training.get("history")
    log = Path(f"{recognizer.model_path}.log.jsonl")
    if not history and log.is_file():
        history = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [("", history)] if history else []


def _html(metrics: dict, sections: list[tuple[str, Path]]) -> str:
    windowed = metrics.get("windows", {})
    sources = [("", metrics, HEADLINE), ("grouped ", metrics.get("grouped", {}), HEADLINE[:9]),
               (f"{windowed.get('per_file')} windows/file: ", windowed, HEADLINE[:9])]
    rows = []
    for prefix, source, entries in sources:
        for view, key, name in entries:
            value = source.get(view, {}).get(key)
            value = value.get("f1") if isinstance(value, dict) else value  # the macro-F1 entry
            if value is not None:
                rows.append(f"<tr><td>{prefix}{name}</td><td>{value:.3f}</td></tr>")
    rows += [f"<tr><td>top-1 on one-part clips: {html.escape(material)} ({view['examples']})</td>"
             f"<td>{view['accuracy']:.3f}</td></tr>" for material, view in metrics.get("single_label_by_material", {}).items()]
    per_label = metrics.get("multi_label", {}).get("per_label", {})
    label_rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{v['positives']}</td><td>{_fmt(v['ap'])}</td><td>{_fmt(v['roc_auc'])}"
        f"</td><td>{_fmt(v['f1'])}</td><td>{_fmt(metrics.get('single_label', {}).get('per_class', {}).get(label, {}).get('recall'))}</td></tr>"
        for label, v in per_label.items())
    figures_html = "".join(figure(path, title) for title, path in sections)
    skipped = metrics.get("skipped", [])
    return page(f"timbrescope evaluation: {metrics['dataset']}", f"""<h1>Evaluation of {html.escape(Path(metrics['model']).name)}</h1>
<p>Data: {html.escape(metrics['dataset'])} ({html.escape(metrics['data'])}), split <b>{html.escape(metrics['split'])}</b>:
{metrics['examples']} examples scored, {len(skipped)} skipped (unreadable).
Targets not scored by this model: {html.escape(', '.join(metrics.get('not_scored', [])) or 'none')}.</p>
<h2>Headline</h2><table><tr><th>metric</th><th>value</th></tr>{''.join(rows)}</table>
<h2>Per label</h2><table><tr><th>label</th><th>positives</th><th>AP</th><th>ROC AUC</th><th>F1</th><th>recall (single-label)</th></tr>
{label_rows}</table>
<h2>Figures</h2>{figures_html}
<p>Every number is in metrics.json beside this page.</p>""")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
