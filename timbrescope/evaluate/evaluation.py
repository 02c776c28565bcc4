"""``evaluate``: score a model on a dataset split and compute every view of the evaluation issue.

Targets are the dataset's (labels, or families where it only tells the family). A model scores a
label target with that label's score and a family target with the best score of its labels; a
target is detected when (one of) its label(s) reaches the model's threshold. Targets the model
cannot score are listed under ``not_scored``.

Views: multi-label (every example), single-label (examples with exactly one target: the model's top
label, mapped to the dataset's targets, is the prediction; a top label outside them counts as
``other``, and ``outside`` keeps which labels those were; for a rendered corpus also by what the one
part plays: single notes, phrases, score lines, drums), grouped (targets and labels mapped to
families, or to the groups of a mapping file), frame-level (examples with known segments), composer
(models with a composer head, examples with a known composer) and, with ``windows``, N random 5-s
windows per file beside the whole-file scores.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from timbrescope.data.clips import CLIP_SECONDS
from timbrescope.data.dataset import Dataset, Example, example_length, region
from timbrescope.data.specs import open_dataset
from timbrescope.data.targets import frame_target
from timbrescope.errors import DataError, ParameterError, TimbrescopeError
from timbrescope.evaluate.metrics import frame_metrics, multi_label_metrics, roc_curves, single_label_metrics
from timbrescope.taxonomy import FAMILIES, SOURCES, family_of, source_of, target_members


@dataclass
class Scored:
    """A model's output on examples: clip scores ``[n, labels]`` and frame scores (one ``[T, labels]``
    array per example)."""

    examples: list[Example]
    scores: np.ndarray
    frames: list[np.ndarray]
    composers: list[list[str]] | None = None  # per example, the model's composers best first
    active: list[np.ndarray] | None = None  # per example, bool [T, labels]: the frames of its timeline


def evaluate(data: str | Path | Dataset, recognizer, split: str = "test", windows: int | None = None,
             groups: dict[str, list[str]] | None = None, limit: int | None = None, seed: int = 0,
             progress: Callable[[int, int], None] | None = None) -> tuple[dict, dict]:
    """Evaluate ``recognizer`` (a ``Recognizer``) on ``split`` of ``data`` (a spec or a Dataset).

    Returns ``(metrics, details)``: JSON-ready metrics, and what the report's figures need besides them
    (``roc`` curves, and ``errors``: up to three misrecognised examples with their frame scores).
    """
    dataset = data if isinstance(data, Dataset) else open_dataset(data)
    examples = dataset.sample(split, limit, seed)
    takes_audio = getattr(recognizer, "takes_audio", True)
    if dataset.has_audio != takes_audio:
        raise DataError(f"{dataset.name} holds {'audio' if dataset.has_audio else 'precomputed features'} but the "
                        f"model was fitted on {'audio' if takes_audio else 'precomputed features'}")
    if windows is not None and windows < 1:
        raise ParameterError(f"windows must be at least 1, got {windows}")
    if takes_audio:
        scored, skipped = score_examples(recognizer, examples, progress)
    else:
        scores = recognizer.score_features(np.stack([ex.features for ex in examples]))
        scored, skipped = Scored(examples, scores, [row[None] for row in scores]), []
    if not scored.examples:
        raise DataError(f"{dataset.name}: no example of split {split!r} could be decoded ({len(skipped)} failed)")
    metrics, details = _views(recognizer, scored, groups)
    details["errors"] = _errors(recognizer, scored) if takes_audio else []
    metrics = {"dataset": dataset.name, "data": str(dataset.root), "split": split,
               "model": str(recognizer.model_path), "examples": len(scored.examples), "skipped": skipped, **metrics}
    if windows and takes_audio:
        rng = np.random.default_rng(seed)
        window_examples = [w for ex in scored.examples for w in _random_windows(ex, windows, rng)]
        window_scored, _ = score_examples(recognizer, window_examples, None)
        metrics["windows"] = {"per_file": windows, "examples": len(window_scored.examples),
                              **_views(recognizer, window_scored, groups)[0]}
    return metrics, details


def load_groups(path: Path) -> dict[str, list[str]]:
    """A grouping file: JSON ``{"group": ["label or family", ...], ...}``."""
    try:
        groups = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the grouping file ({exc})") from None
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise DataError(f'{path}: expected {{"group": ["label", ...], ...}}')
    return groups


def score_examples(recognizer, examples: list[Example], progress=None) -> tuple[Scored, list[str]]:
    """Scores of ``recognizer`` on each example (its file, or its region of a file); examples that
    cannot be decoded are skipped, each with its reason."""
    kept, scores, frames, skipped, composers, active = [], [], [], [], [], []
    index = {label: i for i, label in enumerate(recognizer.labels)}
    for i, ex in enumerate(examples):
        try:
            if ex.offset == 0 and ex.duration is None:
                result = recognizer.identify(ex.path)
            else:
                result = recognizer.identify(ex.load_audio(recognizer.sample_rate), sr=recognizer.sample_rate)
        except TimbrescopeError as exc:
            skipped.append(f"{ex.id}: {exc}")
            continue
        row = np.zeros(len(index), np.float32)
        for item in result.instruments:
            row[index[item["label"]]] = item["score"]
        kept.append(ex)
        scores.append(row)
        frames.append(result.frames)
        active.append(result.active)
        composers.append([item["label"] for item in result.composers or []])
        if progress:
            progress(i + 1, len(examples))
    return Scored(kept, np.array(scores).reshape(len(kept), len(index)), frames, composers, active), skipped


def _detection(scored: Scored, members: dict[str, list[int]], detected: np.ndarray) -> dict:
    """Clip-level detection over every label of the model, on the fully annotated examples: a detected
    label is right when it stands for one of the example's labels (a member, for a family label);
    precision = right detections / detections, recall = example labels detected / example labels."""
    right = detections = hits = positives = 0
    for ex, on in zip(scored.examples, detected):
        if ex.known is not None:
            continue
        wanted = {j for t in ex.labels for j in members.get(t, ())}
        found = set(np.flatnonzero(on))
        detections += len(found)
        right += len(found & wanted)
        scorable = [t for t in ex.labels if members.get(t)]
        positives += len(scorable)
        hits += sum(bool(found & set(members[t])) for t in scorable)
    precision = right / detections if detections else 0.0
    recall = hits / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "detections": detections, "labels": positives}


def _random_windows(ex: Example, count: int, rng: np.random.Generator) -> list[Example]:
    length = example_length(ex)
    if length <= CLIP_SECONDS:
        return [replace(ex, id=f"{ex.id}@0")]
    return [region(ex, float(rng.uniform(0, length - CLIP_SECONDS)), CLIP_SECONDS, i) for i in range(count)]


def _views(recognizer, scored: Scored, groups: dict[str, list[str]] | None) -> tuple[dict, dict]:
    labels = list(recognizer.labels)
    thresholds = np.array([recognizer.thresholds[label] for label in labels])
    detected = scored.scores >= thresholds
    targets = sorted({t for ex in scored.examples for t in (*ex.labels, *(ex.known or ()))})
    members = {t: [labels.index(t)] if t in labels else [labels.index(m) for m in _members(t) if m in labels]
               for t in targets}
    scorable = [t for t in targets if members[t]]
    metrics: dict = {"targets": scorable, "not_scored": [t for t in targets if not members[t]]}
    details: dict = {}
    if scorable:
        truth, score, pred, mask = _target_matrices(scored, scorable, members, detected)
        metrics["multi_label"] = multi_label_metrics(scorable, truth, score, pred, mask)
        metrics["detection"] = _detection(scored, members, detected)
        details["roc"] = roc_curves(scorable, truth, score, mask)
        single = single_label_predictions(scored, scorable, labels)
        if single:
            expected, predicted, top3, top = single
            metrics["single_label"] = {**single_label_metrics(expected, predicted, top3, scorable),
                                       "outside": _outside(expected, predicted, top)}
        by_material = _single_label_by_material(scored, scorable, labels)
        if by_material:
            metrics["single_label_by_material"] = by_material
        group_map = groups or {family: list(members_) for family, members_ in FAMILIES.items()}
        grouped = _grouped(scored, labels, detected, group_map)
        if grouped:
            metrics["grouped"] = grouped
    if scored.active and getattr(recognizer, "frame_level", True) and any(ex.segments is not None
                                                                           for ex in scored.examples):
        metrics["frames"] = _frames(recognizer, scored, labels)
    composed = [(ex.metadata["composer"], ranking) for ex, ranking in zip(scored.examples, scored.composers or [])
                if ex.metadata.get("composer") and ranking]
    if composed:
        metrics["composer"] = single_label_metrics([t for t, _ in composed], [r[0] for _, r in composed],
                                                   [t in r[:3] for t, r in composed], list(recognizer.composers))
    sourced = [(source, row) for ex, row in zip(scored.examples, scored.scores) if (source := _source(ex))]
    if sourced:
        truth = [source for source, _ in sourced]
        ranked = [_source_ranking(row, labels) for _, row in sourced]
        metrics["source"] = single_label_metrics(truth, [r[0] for r in ranked], [t in r[:2] for t, r in
                                                                                 zip(truth, ranked)], list(SOURCES))
    metrics["class_distribution"] = {t: sum(t in ex.labels for ex in scored.examples) for t in targets}
    return metrics, details


def _source(ex: Example) -> str | None:
    """The example's source class where its data says it: NSynth's ``source``, or a rendered one-part clip's
    (a manifest's ``source`` column names a library, not a class: not one of ``SOURCES``, so not used)."""
    parts = list((ex.metadata.get("sources") or {}).values())  # a rendered clip's source per part
    found = parts[0] if len(parts) == 1 else None if parts else ex.metadata.get("source")
    return found if found in SOURCES else None


def _source_ranking(row: np.ndarray, labels: list[str]) -> list[str]:
    """The sources best first, each scored by its best label (as ``identify``'s ``sources``); "top-3"
    of the report is top-2 here, of three classes."""
    ranking: list[str] = []
    for i in np.argsort(-row, kind="stable"):
        if (source := source_of(labels[i])) not in ranking:
            ranking.append(source)
    return ranking


def _single_label_by_material(scored: Scored, targets: list[str], labels: list[str]) -> dict:
    """Top-1 accuracy of rendered one-part clips by what the part plays (``note``, ``phrase``,
    ``score``, ``drums``: the manifest's ``material``): ``{material: {"examples", "accuracy"}}``."""
    materials = [parts[0].get("material") if len(parts := ex.metadata.get("parts") or []) == 1 else None
                 for ex in scored.examples]
    views = {}
    for material in sorted({m for m in materials if m}):
        keep = [i for i, m in enumerate(materials) if m == material]
        single = single_label_predictions(Scored([scored.examples[i] for i in keep], scored.scores[keep], []),
                                          targets, labels)
        if single:
            truth, predicted, _, _ = single
            views[material] = {"examples": len(truth),
                               "accuracy": round(float(np.mean([t == p for t, p in zip(truth, predicted)])), 5)}
    return views


def _errors(recognizer, scored: Scored, most: int = 3) -> list[tuple[Example, np.ndarray, str]]:
    """Up to ``most`` examples whose detected instruments differ from the truth, with their frames."""
    labels = list(recognizer.labels)
    out = []
    for ex, row, frames in zip(scored.examples, scored.scores, scored.frames):
        found = {labels[i] for i in np.flatnonzero(row >= [recognizer.thresholds[label] for label in labels])}
        truth = set(ex.labels)
        if {_as_target(label, sorted(truth)) for label in found} - {"other"} != truth:
            out.append((ex, frames, f"{ex.id}: true {', '.join(sorted(truth)) or 'nothing'}; "
                                    f"detected {', '.join(sorted(found)) or 'nothing'}"))
        if len(out) == most:
            break
    return out


def _members(target: str) -> list[str]:
    try:
        return target_members(target)
    except KeyError:
        return [target]


def _target_matrices(scored: Scored, targets: list[str], members: dict, detected: np.ndarray):
    n = len(scored.examples)
    truth, score, pred, mask = (np.zeros((n, len(targets))) for _ in range(4))
    for j, t in enumerate(targets):
        cols = members[t]
        score[:, j] = scored.scores[:, cols].max(axis=1)
        pred[:, j] = detected[:, cols].any(axis=1)
        truth[:, j] = [t in ex.labels for ex in scored.examples]
        mask[:, j] = [ex.is_known(t) for ex in scored.examples]
    return truth, score, pred, mask.astype(bool)


def single_label_predictions(scored: Scored, targets: list[str], labels: list[str]):
    """(truth, predicted, top-3 hits, the model's own top label) over examples with exactly one target and full
    annotation; ``predicted`` is the top label as a target (or ``other``)."""
    truth, predicted, top3, top = [], [], [], []
    for ex, row in zip(scored.examples, scored.scores):
        if len(ex.labels) != 1 or ex.known is not None or ex.labels[0] not in targets:
            continue
        order = np.argsort(-row, kind="stable")[:3]
        ranking = [_as_target(labels[i], targets) for i in order]
        truth.append(ex.labels[0])
        predicted.append(ranking[0])
        top3.append(ex.labels[0] in ranking)
        top.append(labels[order[0]])
    return (truth, predicted, top3, top) if truth else None


def _outside(truth: list[str], predicted: list[str], top: list[str]) -> dict[str, dict[str, int]]:
    """``{target: {model label: recordings}}``: the model's top labels behind the ``other`` predictions, most first."""
    counts: dict[str, Counter] = {}
    for target, as_target, label in zip(truth, predicted, top):
        if as_target == "other":
            counts.setdefault(target, Counter())[label] += 1
    return {target: dict(counts[target].most_common()) for target in sorted(counts)}


def _as_target(label: str, targets: list[str]) -> str:
    """A model label as one of the dataset's targets: itself, the family target it is a member of (as the
    multi-label view scores it: a target named like a label, ``flute``, is that label only), or ``other``."""
    if label in targets:
        return label
    family = _family(label)
    return family if family in targets and label in _members(family) else "other"


def _grouped(scored: Scored, labels: list[str], detected: np.ndarray, groups: dict[str, list[str]]) -> dict:
    """The multi- and single-label views after mapping targets and model labels to groups."""
    def group_of(name: str) -> str | None:
        for group, names in groups.items():
            if name == group or name in names or any(m in names for m in _members(name)) or _family(name) in names:
                return group
        return None

    label_groups = [group_of(label) for label in labels]
    names = sorted({g for ex in scored.examples for t in ex.labels if (g := group_of(t))} & set(label_groups) - {None})
    if not names:
        return {}
    cols = {g: [i for i, lg in enumerate(label_groups) if lg == g] for g in names}
    n = len(scored.examples)
    truth = np.array([[any(group_of(t) == g for t in ex.labels) for g in names] for ex in scored.examples], float)
    mask = np.array([[ex.known is None or any(group_of(t) == g for t in ex.known) for g in names]
                     for ex in scored.examples]).reshape(n, len(names))
    score = np.stack([scored.scores[:, cols[g]].max(axis=1) for g in names], axis=1)
    pred = np.stack([detected[:, cols[g]].any(axis=1) for g in names], axis=1)
    out = {"groups": {g: [labels[i] for i in cols[g]] for g in names},
           "multi_label": multi_label_metrics(names, truth, score, pred, mask)}
    single = [(group_of(ex.labels[0]), _group_ranking(row, label_groups))
              for ex, row in zip(scored.examples, scored.scores) if len(ex.labels) == 1 and ex.known is None]
    single = [(t, ranking) for t, ranking in single if t in names]
    if single:
        out["single_label"] = single_label_metrics([t for t, _ in single], [r[0] for _, r in single],
                                                   [t in r[:3] for t, r in single], names)
    return out


def _group_ranking(row: np.ndarray, label_groups: list[str | None]) -> list[str]:
    """Groups in the order of their best label's score (labels without a group count as ``other``)."""
    ranking = []
    for i in np.argsort(-row, kind="stable"):
        group = label_groups[i] or "other"
        if group not in ranking:
            ranking.append(group)
    return ranking


def _family(name: str) -> str | None:
    try:
        return family_of(name)
    except TimbrescopeError:
        return name if name in FAMILIES else None


def _frames(recognizer, scored: Scored, labels: list[str]) -> dict:
    """Frame metrics of the timelines ``identify`` draws (``Result.active``)."""
    frames_true, frames_pred, clip_ids = [], [], []
    for i, (ex, active) in enumerate(zip(scored.examples, scored.active)):
        if ex.segments is None:
            continue
        frames_true.append(frame_target(ex.segments, labels, len(active), recognizer.hop_seconds))
        frames_pred.append(active)
        clip_ids.append(np.full(len(active), i))
    return frame_metrics(labels, np.concatenate(frames_true), np.concatenate(frames_pred), recognizer.hop_seconds,
                         np.concatenate(clip_ids))
