"""Training on any dataset (a rendered corpus by default): multi-label clip and frame targets,
resumable, with early stopping.

Examples are cut into 5-s clips (long recordings windowed). Frame targets come from known segments;
where a dataset has none the frame loss is masked, and targets a dataset left unannotated (OpenMIC)
are masked in the clip loss, the validation mAP and the thresholds. Undecodable files are skipped
and counted in the summary.

Log-mel features are computed once by the model's own front-end (so they are exactly what inference
computes) and kept in memory as float16; the network after the front-end is trained on them with
SpecAugment and mixture augmentation (two clips summed in the power domain, labels united).

Files written beside ``out`` (e.g. ``model.ckpt``):
``model.ckpt`` the best model (by validation mAP) with per-label thresholds tuned on validation;
``model.ckpt.state`` the resume state after the last complete epoch (removed when training ends);
``model.ckpt.log.jsonl`` one line per epoch (losses, validation mAP, learning rate, seconds).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from timbrescope.data.clips import CLIP_SECONDS, SkipLog, clip_examples, decode_batches
from timbrescope.data.dataset import Dataset, Example
from timbrescope.data.specs import open_dataset
from timbrescope.data.targets import clip_target, frame_target
from timbrescope.errors import DataError, ParameterError
from timbrescope.fileio import atomic_write_text, ensure_writable_folder
from timbrescope.evaluate.metrics import best_thresholds, mean_average_precision
from timbrescope.models import create_model
from timbrescope.train.checkpoint import atomic_torch_save, save_checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (saved in the checkpoint)."""

    model: str = "timbrenet"
    model_config: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 6
    frame_loss_weight: float = 0.5
    mixture_probability: float = 0.3
    seed: int = 0
    limit: int | None = None  # at most this many clips per split (quick experiments)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise ParameterError(f"epochs, batch size and learning rate must be positive, got "
                                 f"{self.epochs}, {self.batch_size}, {self.learning_rate}")


@dataclass
class _Features:
    """Log-mel ``[n, mels, frames]`` (float16), clip targets and their mask ``[n, labels]`` (0: unknown),
    frame targets ``[n, T', labels]`` and whether each clip's frame targets are known ``[n]``."""

    logmel: torch.Tensor
    clips: torch.Tensor
    mask: torch.Tensor
    frames: torch.Tensor
    frame_known: torch.Tensor


def train(data: str | Path | Dataset, out: Path, config: TrainConfig = TrainConfig(),
          progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train on ``data`` (a data spec or a Dataset; its train and validation splits); write the best
    checkpoint to ``out``; return its summary.

    Running the same call again after a kill resumes from the last complete epoch.
    """
    out = Path(out)
    ensure_writable_folder(out.parent)
    dataset = data if isinstance(data, Dataset) else open_dataset(data)
    if not dataset.has_audio:
        raise DataError(f"{dataset.name} holds precomputed features, not audio; {config.model!r} needs audio")
    state_path, log_path = Path(f"{out}.state"), Path(f"{out}.log.jsonl")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_examples = clip_examples(dataset.split("train")[:config.limit], CLIP_SECONDS)
    valid_examples = clip_examples(dataset.split("validation")[:config.limit], CLIP_SECONDS)
    labels = sorted({label for ex in train_examples for label in (*ex.labels, *(ex.known or ()))})
    if not labels:
        raise DataError(f"{dataset.name}: the train split has no labelled example")
    model = create_model(config.model, labels=labels, **config.model_config)
    skipped = SkipLog()
    train_feats = _features(model, train_examples, skipped, lambda d, t: progress and progress("features", d, t))
    valid_feats = _features(model, valid_examples, skipped, lambda d, t: None)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_feats.logmel) / config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate,
                                                   total_steps=config.epochs * steps_per_epoch)
    start_epoch, best, history = 0, {"map": -1.0, "epoch": -1, "state": None}, []
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state["config"] != asdict(config) or state["labels"] != labels:
            raise DataError(f"{state_path} belongs to another training run; delete it to start again")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])

    for epoch in range(start_epoch, config.epochs):
        if epoch - best["epoch"] > config.patience:
            break
        started = time.perf_counter()
        train_loss = _train_epoch(model, train_feats, optimiser, schedule, config, rng,
                                  lambda done, total: progress and progress(f"epoch {epoch + 1}", done, total))
        valid_loss, scores = _evaluate(model, valid_feats, config)
        val_map = mean_average_precision(valid_feats.clips.numpy(), scores, valid_feats.mask.numpy())
        history.append({"epoch": epoch + 1, "train_loss": round(train_loss, 5), "valid_loss": round(valid_loss, 5),
                        "valid_map": round(val_map, 5), "learning_rate": schedule.get_last_lr()[0],
                        "seconds": round(time.perf_counter() - started, 1)})
        if val_map > best["map"]:
            best = {"map": val_map, "epoch": epoch, "state": {k: v.clone() for k, v in model.state_dict().items()}}
        atomic_write_text(log_path, "".join(json.dumps(row) + "\n" for row in history))
        atomic_torch_save({"config": asdict(config), "labels": labels, "model": model.state_dict(),
                           "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(), "epoch": epoch,
                           "best": best, "history": history, "rng": rng.bit_generator.state,
                           "torch_rng": torch.get_rng_state()}, state_path)

    model.load_state_dict(best["state"])
    _, scores = _evaluate(model, valid_feats, config)
    thresholds = best_thresholds(valid_feats.clips.numpy(), scores, valid_feats.mask.numpy())
    summary = {"data": str(dataset.root), "dataset": dataset.name, "train_clips": len(train_feats.logmel),
               "validation_clips": len(valid_feats.logmel), "skipped_files": len(skipped),
               "best_epoch": best["epoch"] + 1, "valid_map": round(best["map"], 5), "epochs_run": len(history),
               "seconds": round(sum(h["seconds"] for h in history), 1), "config": asdict(config),
               "history": history}
    save_checkpoint(out, model, config.model, thresholds.tolist(), summary)
    state_path.unlink(missing_ok=True)
    return summary


@torch.no_grad()
def _features(model: nn.Module, examples: list[Example], skipped: SkipLog,
              progress: Callable[[int, int], None]) -> _Features:
    """Log-mel of every clip by the model's own front-end (float16), with clip and frame targets."""
    model.eval()
    logmel, kept = [], []
    for audio, batch in decode_batches(examples, model.frontend.config.sample_rate, CLIP_SECONDS, skipped):
        logmel.append(model.frontend(torch.from_numpy(audio)).half())
        kept += batch
        progress(len(kept), len(examples))
    if not kept:
        raise DataError(f"no example could be decoded ({len(skipped)} failed, e.g. {skipped.reasons[:1]})")
    logmel = torch.cat(logmel)
    frames = model.forward_features(logmel[:1].float())["frame_logits"].shape[1]
    labels = model.labels
    empty = np.zeros((frames, len(labels)), np.float32)
    return _Features(
        logmel,
        torch.from_numpy(np.stack([clip_target(ex.labels, labels) for ex in kept])),
        torch.from_numpy(np.stack([[float(ex.is_known(label)) for label in labels] for ex in kept]).astype(np.float32)),
        torch.from_numpy(np.stack([empty if ex.segments is None else
                                   frame_target(ex.segments, labels, frames, model.frame_seconds) for ex in kept])),
        torch.tensor([ex.segments is not None for ex in kept]))


def _train_epoch(model: nn.Module, feats: _Features, optimiser, schedule, config: TrainConfig,
                 rng: np.random.Generator, progress: Callable[[int, int], None]) -> float:
    model.train()
    order = rng.permutation(len(feats.logmel))
    losses = []
    for step, start in enumerate(range(0, len(order), config.batch_size)):
        index = torch.from_numpy(order[start:start + config.batch_size])
        batch = _augment(_Features(feats.logmel[index].float(), feats.clips[index], feats.mask[index],
                                   feats.frames[index], feats.frame_known[index]), config, rng)
        out = model.forward_features(batch.logmel)
        loss = _loss(out, batch, config)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        progress(step + 1, math.ceil(len(order) / config.batch_size))
    return float(np.mean(losses))


@torch.no_grad()
def _evaluate(model: nn.Module, feats: _Features, config: TrainConfig) -> tuple[float, np.ndarray]:
    """Mean validation loss and clip probabilities ``[n, labels]``."""
    model.eval()
    losses, scores = [], []
    for start in range(0, len(feats.logmel), config.batch_size):
        part = slice(start, start + config.batch_size)
        out = model.forward_features(feats.logmel[part].float())
        losses.append(_loss(out, _Features(None, feats.clips[part], feats.mask[part], feats.frames[part],
                                           feats.frame_known[part]), config).item())
        scores.append(torch.sigmoid(out["clip_logits"]).numpy())
    return float(np.mean(losses)), np.concatenate(scores)


def _loss(out: dict, target: _Features, config: TrainConfig) -> torch.Tensor:
    """Clip BCE over known targets plus weighted frame BCE over clips with known frames."""
    bce = nn.functional.binary_cross_entropy_with_logits
    clip = (bce(out["clip_logits"], target.clips, reduction="none") * target.mask).sum() / target.mask.sum().clamp(min=1)
    frame_weight = target.frame_known.float()[:, None, None].expand_as(target.frames)
    frame = (bce(out["frame_logits"], target.frames, reduction="none") * frame_weight).sum() / frame_weight.sum().clamp(min=1)
    return clip + config.frame_loss_weight * frame


def _augment(batch: _Features, config: TrainConfig, rng: np.random.Generator) -> _Features:
    """Mixtures of two clips (power sum at a random -10..0 dB, labels united; a target stays unknown
    unless known in both or present in either), then SpecAugment masks."""
    logmel, clips, mask, frames, known = batch.logmel, batch.clips, batch.mask, batch.frames, batch.frame_known
    size, mels, length = logmel.shape
    mix = torch.from_numpy(rng.random(size) < config.mixture_probability)
    if mix.any():
        partner = torch.from_numpy(rng.permutation(size))
        gain = torch.from_numpy(rng.uniform(-10, 0, size).astype(np.float32)) * (math.log(10) / 10)
        mixed = torch.logaddexp(logmel, logmel[partner] + gain[:, None, None])
        logmel = torch.where(mix[:, None, None], mixed, logmel)
        united = torch.maximum(clips, clips[partner])
        united_mask = torch.maximum(torch.minimum(mask, mask[partner]), united)
        clips = torch.where(mix[:, None], united, clips)
        mask = torch.where(mix[:, None], united_mask, mask)
        frames = torch.where(mix[:, None, None], torch.maximum(frames, frames[partner]), frames)
        known = torch.where(mix, known & known[partner], known)
    logmel = logmel.clone()
    floor = logmel.amin(dim=(1, 2))
    for i in range(size):
        f0, fw = int(rng.integers(mels)), int(rng.integers(0, mels // 8 + 1))
        t0, tw = int(rng.integers(length)), int(rng.integers(0, length // 10 + 1))
        logmel[i, f0:f0 + fw, :] = floor[i]
        logmel[i, :, t0:t0 + tw] = floor[i]
    return _Features(logmel, clips, mask, frames, known)


