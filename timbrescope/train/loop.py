"""Training any registered model on any dataset (a rendered corpus by default): resumable, with
early stopping, per-label clip and frame (timeline) thresholds tuned on the validation split.

Examples are cut into 5-s clips (long recordings windowed). Features are computed once by the
model's own front-end (so they are exactly what inference computes) and kept in memory; networks
are trained on them with the augmentation their kind allows (mixtures of two clips, SpecAugment,
optionally random stretches of each clip).
Frame targets come from known segments; where a dataset has none the frame loss is masked, and
targets a dataset left unannotated (OpenMIC) are masked in the clip loss, the validation mAP and the
thresholds. Undecodable files are skipped and counted. Classical models (``fitted_once``) are fitted
once on the same features. Datasets of precomputed features (UIowa) train the models that accept them.

Files written beside ``out`` (e.g. ``model.ckpt``):
``model.ckpt`` the best model (by validation mAP) with its per-label thresholds tuned on validation;
``model.ckpt.state`` the resume state after the last complete epoch (removed when training ends);
``model.ckpt.log.jsonl`` one line per epoch (losses, validation mAP, learning rate, seconds);
``model.ckpt.members/`` a recipe of several member networks (``[model] members``): each member's
files, side by side, and the features they share (``features.pt``; all removed when the averaged model is written).
"""

from __future__ import annotations

import copy
import ctypes
import json
import math
import multiprocessing
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from timbrescope.augment import Release, augment
from timbrescope.data.clips import CLIP_SECONDS, SkipLog, clip_examples, decode_batches
from timbrescope.data.dataset import Dataset, Example
from timbrescope.data.specs import open_dataset
from timbrescope.data.targets import clip_target, frame_target
from timbrescope.errors import DataError, ParameterError
from timbrescope.evaluate import thresholds
from timbrescope.evaluate.metrics import mean_average_precision
from timbrescope.fileio import atomic_write_text, ensure_writable_folder
from timbrescope.models import create_model
from timbrescope.models.checkpoint import atomic_torch_save, checkpoint_meta, load_checkpoint, save_checkpoint
from timbrescope.models.registry import accepts_features, list_models, model_class
from timbrescope.timeline import DecisionRule
from timbrescope.train import distributed
from timbrescope.train.distributed import Ranks
from timbrescope.train.recipe import SECTIONS, Recipe, TrainConfig
from timbrescope.train.sampling import Batch, epoch_order, random_crop


PACE_STEPS = 20  # steps timed before a budgeted run plans its schedule (or 1/20 of the budget, if sooner)
KEPT_BYTES = 1 << 30  # freed blocks up to this size stay with the training process (retain_freed_memory)


def train(data: str | Path | Dataset, out: Path, config: TrainConfig = TrainConfig(),
          progress: Callable[[str, int, int], None] | None = None, feature_cache: dict | None = None) -> dict:
    """Train ``config.model`` on ``data`` (a data spec or a Dataset; its train and validation splits);
    write the best checkpoint to ``out``; return its summary. Running the same call again after a
    kill resumes from the last complete epoch. ``feature_cache`` (a dict) shares computed features
    between runs whose front-ends are equal (the benchmark passes one)."""
    out = Path(out)
    ensure_writable_folder(out.parent)
    retain_freed_memory()
    if model_class(config.model).assembled:
        raise ParameterError(f"{config.model} is assembled from trained networks: name a network and set "
                             f"[model] members instead")
    ranks = distributed.join()
    if ranks.world > 1 and config.budget_seconds:
        raise ParameterError("a time budget (schedule.budget_minutes) is for one process, not torchrun")
    if config.members > 1:
        summary = _train_members(data, out, config, ranks)
    else:
        summary = _train_one(data, out, config, progress if ranks.main else None, feature_cache, ranks)
    distributed.leave(ranks)
    return summary


def retain_freed_memory() -> None:
    """Have glibc's malloc keep what this process frees, up to ``KEPT_BYTES`` a block, for its next allocations.
    A training step allocates and frees the same large activations every time; by default each block over 32 MB
    is mapped anew and every freed heap top handed back, so the next step faults them in again page by page
    (about 20,000 minor faults a step of the default network, a tenth of its time on this 2-core CPU). Results are
    the same bit for bit; only the peak memory is held until the process ends. Without glibc, nothing changes."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    for option in (-3, -1):  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD (malloc.h)
        libc.mallopt(option, KEPT_BYTES)


def _train_one(data: str | Path | Dataset, out: Path, config: TrainConfig,
               progress: Callable[[str, int, int], None] | None, feature_cache: dict | None, ranks: Ranks) -> dict:
    """``train`` of one network (or classical model) by this process, one of ``ranks``; the summary (rank 0's)."""
    dataset = data if isinstance(data, Dataset) else open_dataset(data)
    state_path, log_path = Path(f"{out}.state"), Path(f"{out}.log.jsonl")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed if ranks.world == 1 else [config.seed, ranks.rank])
    skipped = SkipLog()
    model, train_feats, valid_feats = training_features(dataset, config, skipped, feature_cache,
                                                        lambda d, t: progress and progress("features", d, t))
    if model.fitted_once:
        history, best = _fit_classical(model, train_feats, valid_feats, config)
    else:
        history, best = fit_network(model, train_feats, valid_feats, config, rng, state_path, log_path, model.labels,
                                    progress, ranks)
    if not ranks.main:  # rank 0 tunes the thresholds and writes the checkpoint
        return {"rank": ranks.rank}
    model.to("cpu").load_state_dict(best["state"])
    rule = DecisionRule(window_seconds=CLIP_SECONDS, clip_floor=config.clip_floor)
    clip_thresholds, frame_thresholds = tune_thresholds(model, valid_feats, config, rule)
    summary = {"data": str(dataset.root), "dataset": dataset.name, "train_clips": len(train_feats.clips),
               "validation_clips": len(valid_feats.clips), "skipped_files": len(skipped),
               "best_epoch": best["epoch"] + 1, "valid_map": round(best["map"], 5), "epochs_run": len(history),
               "seconds": round(sum(h["seconds"] for h in history), 1), "ranks": ranks.world,
               **({} if model.fitted_once else {"precision": training_precision(config, ranks.device)}),
               "config": asdict(config),
               "recipe": Recipe(str(data if not isinstance(data, Dataset) else dataset.root), config).to_dict(),
               "history": history}
    save_checkpoint(out, model, config.model, clip_thresholds.tolist(), frame_thresholds.tolist(), summary, rule)
    state_path.unlink(missing_ok=True)
    return summary


def training_features(dataset: Dataset, config: TrainConfig, skipped: SkipLog, feature_cache: dict | None = None,
                      progress: Callable[[int, int], None] = lambda done, total: None
                      ) -> tuple[nn.Module, Batch, Batch]:
    """The untrained model of ``config`` (weights drawn from torch's generator as it stands) for the labels of
    ``dataset``'s train split and ``config.extra_train``, and its train and validation features with their targets:
    all that the epochs draw from. Files that cannot be decoded are recorded in ``skipped``."""
    model, train_examples = _untrained_model(dataset, config)
    train_feats = _features(model, train_examples, skipped, feature_cache, progress)
    return model, train_feats, _validation_features(model, dataset, config, skipped, feature_cache)


def _untrained_model(dataset: Dataset, config: TrainConfig) -> tuple[nn.Module, list[Example]]:
    """``training_features``' untrained model and the 5-s train clips it trains on."""
    train_examples = dataset.sample("train", config.limit, config.seed) + extra_train_examples(config)
    train_examples = without_banks(train_examples, config.exclude_banks)
    train_examples = clip_examples(train_examples, CLIP_SECONDS)
    labels = sorted({label for ex in train_examples for label in (*ex.labels, *(ex.known or ()))})
    if not labels:
        raise DataError(f"{dataset.name}: the train split has no labelled example")
    model = create_model(config.model, labels=labels, **_model_config(config, dataset, train_examples))
    if config.transfer_from:
        _transfer(model, config.transfer_from)
    return model, train_examples


def _train_members(data: str | Path | Dataset, out: Path, config: TrainConfig, ranks: Ranks) -> dict:
    """``config.members`` networks of ``config.model``, seeds ``config.seed``, ``config.seed + 1``, …, trained into
    ``out.members/`` (side by side in processes of their own, PyTorch's threads shared out among them, on features
    computed once beforehand; under torchrun one after another, each on every rank), then written to ``out`` as one
    ``ensemble`` whose clip and frame thresholds are tuned on the validation split for the average. Run again after
    a kill, each member resumes (or is reused, once written)."""
    if model_class(config.model).fitted_once:
        raise ParameterError(f"{config.model} is fitted in one step; only networks are trained as several members")
    spec = str(data.root if isinstance(data, Dataset) else data)
    folder = Path(f"{out}.members")
    folder.mkdir(exist_ok=True)
    # a Dataset goes to the members as it is (a chosen subset, a public dataset's loader): its root alone could not
    # open it again
    jobs = [(data, folder / f"member{k + 1}.ckpt", replace(config, members=1, seed=config.seed + k))
            for k in range(config.members)]
    cache: dict = {}  # the members' front-ends are one: their features are computed once
    if ranks.world > 1:
        summaries = [_member_summary(path, member) or _train_one(data, path, member, None, cache, ranks)
                     for _, path, member in jobs]
        if not ranks.main:
            return {"rank": ranks.rank}
    else:
        features = folder / "features.pt"
        if not all(path.exists() for _, path, _ in jobs):
            _share_features(data, config, features)
        threads = max(1, torch.get_num_threads() // config.members)
        with ProcessPoolExecutor(config.members, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_member_process, initargs=(os.getpid(), threads)) as pool:
            summaries = list(pool.map(_train_member, *zip(*jobs), [features] * len(jobs)))
        cache = _shared_features(features) if features.exists() else cache
    models = [load_checkpoint(path)[0] for _, path, _ in jobs]
    model = create_model("ensemble", labels=models[0].labels,
                         members=[{"model": config.model, "config": m.config} for m in models])
    for member, trained in zip(model.members, models):
        member.load_state_dict(trained.state_dict())
    model.eval()
    dataset = data if isinstance(data, Dataset) else open_dataset(data)
    valid_feats = _validation_features(model, dataset, config, SkipLog(), cache)
    rule = DecisionRule(window_seconds=CLIP_SECONDS, clip_floor=config.clip_floor)
    _, scores, frames = _evaluate(model, valid_feats, config)
    clip_thresholds, frame_thresholds = _thresholds_of(model, valid_feats, scores, frames, rule)
    first = summaries[0]
    summary = {**{key: first[key] for key in ("data", "dataset", "train_clips", "validation_clips", "skipped_files",
                                              "precision") if key in first},
               "valid_map": round(_validation_map(valid_feats, scores), 5),
               "seconds": round(sum(s["seconds"] for s in summaries), 1), "ranks": ranks.world,
               "config": asdict(config), "recipe": Recipe(spec, config).to_dict(), "history": [],
               "members": [{key: s[key] for key in ("best_epoch", "valid_map", "epochs_run", "seconds", "history")}
                           | {"seed": c.seed} for s, (_, _, c) in zip(summaries, jobs)]}
    save_checkpoint(out, model, "ensemble", clip_thresholds.tolist(), frame_thresholds.tolist(), summary, rule)
    shutil.rmtree(folder)
    return summary


def _member_process(parent: int, threads: int) -> None:
    """Set up a member's process, started by the process ``parent``: ``threads`` torch threads, and a watcher that
    ends the process when ``parent`` is gone (a killed ``train``), keeping its resume state: nobody would be left
    to use what it trains."""
    torch.set_num_threads(threads)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()


def _end_with(parent: int, every_seconds: float = 1.0) -> None:
    """End this process as soon as it is no longer the child of ``parent`` (which has ended)."""
    while os.getppid() == parent:
        time.sleep(every_seconds)
    os._exit(1)


def _train_member(data: str | Path | Dataset, path: Path, config: TrainConfig, features: Path) -> dict:
    """One member of ``_train_members`` in a process of its own (``_member_process``), on the ``features`` file of
    ``_share_features`` (when there is one): its summary (the stored one once it is written)."""
    return _member_summary(path, config) or train(
        data, path, config, feature_cache=_shared_features(features) if features.exists() else None)


def _share_features(data: str | Path | Dataset, config: TrainConfig, out: Path) -> None:
    """Compute the train and validation features of ``config`` on ``data`` once, with all of this process's threads,
    and write them to ``out`` for the members (``_shared_features``): ``{"run", "signature", "ids", "inputs"
    [examples, ...] (one tensor: the members map it, the page cache holds it once), "failures" {id: reason}}``.
    A file already there is kept if the same data and settings wrote it (a resumed run), else refused. Datasets of
    precomputed features (no front-end) have nothing to share: no file."""
    dataset = data if isinstance(data, Dataset) else open_dataset(data)
    run = _features_run(dataset, config)
    if out.exists():
        if torch.load(out, mmap=True, weights_only=True)["run"] != run:
            raise DataError(f"{out} belongs to another training run; delete it to start again")
        return
    model, train_examples = _untrained_model(dataset, config)
    if model.frontend is None:
        return
    store: dict = {}
    _frontend_outputs(model, train_examples + _validation_examples(dataset, config), store)
    ids = [key for key, value in store.items() if not isinstance(value, str)]
    if not ids:  # nothing decoded: each member says so as one would alone
        return
    atomic_torch_save({"run": run, "signature": _signature(model), "ids": ids,
                       "inputs": torch.stack([store[key] for key in ids]),
                       "failures": {key: value for key, value in store.items() if isinstance(value, str)}}, out)


def _features_run(dataset: Dataset, config: TrainConfig) -> str:
    """What decides a run's features: the data, the examples drawn and the model's front-end."""
    return json.dumps([str(dataset.root), config.extra_train, config.exclude_banks, config.limit, config.model,
                       config.model_config])


def _shared_features(path: Path) -> dict:
    """The feature cache of ``train`` (``{signature: {example id: features or failure}}``) from a file of
    ``_share_features``, its tensor memory-mapped."""
    shared = torch.load(path, mmap=True, weights_only=True)
    return {shared["signature"]: dict(zip(shared["ids"], shared["inputs"])) | shared["failures"]}


def _member_summary(path: Path, config: TrainConfig) -> dict | None:
    """The training summary of a member already written at ``path`` (DataError if another run wrote it), else None.
    The ``[export]`` settings may differ: training never reads them."""
    if not path.exists():
        return None
    summary = checkpoint_meta(path)["training"]
    if not _same_training(summary["config"], config):
        raise DataError(f"{path} belongs to another training run; delete it to start again")
    return summary


def _same_training(stored: dict, config: TrainConfig) -> bool:
    """Whether a stored ``TrainConfig`` (as a dict; settings newer than it take their defaults) trains the weights
    ``config`` trains: every field but the ``[export]`` ones, which training never reads."""
    def trained(fields: dict) -> dict:
        return {key: value for key, value in fields.items() if key not in SECTIONS["export"].values()}

    return trained(asdict(TrainConfig()) | stored) == trained(asdict(config))


def tune_thresholds(model: nn.Module, feats: Batch, config: TrainConfig, rule: DecisionRule = DecisionRule(),
                    previous: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-label clip and frame thresholds ``[labels]`` of ``model`` on ``feats`` (the validation split),
    by ``evaluate.thresholds.tune_thresholds`` under ``rule`` (``previous``: the thresholds to keep where
    the data cannot tune them)."""
    _, scores, frames = _evaluate(model, feats, config)
    return _thresholds_of(model, feats, scores, frames, rule, previous)


def _thresholds_of(model: nn.Module, feats: Batch, scores: np.ndarray, frames: np.ndarray, rule: DecisionRule,
                   previous: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``tune_thresholds`` from ``model``'s clip ``scores [n, labels]`` and frame scores
    ``frames [n, frames, labels]`` on ``feats``."""
    known = feats.frame_known.numpy().astype(bool) & bool(model.frame_level)
    return thresholds.tune_thresholds(feats.clips.numpy(), scores, feats.mask.numpy(), feats.frames.float().numpy(),
                                      frames, known, rule.smooth_frames, previous, rule.clip_floor)


def retune_thresholds(checkpoint: str | Path, data: str | Path | Dataset, out: str | Path | None = None,
                      clip_floor: float | None = None) -> dict:
    """Tune a trained model's clip and frame thresholds again on ``data``'s validation split (as
    ``train`` does at its end; clip thresholds from ``clip_floor`` up, default: the checkpoint's rule's)
    and write the checkpoint, weights unchanged, to ``out`` (default: in place, atomically); a new floor is also
    written into the training summary's config and recipe, as a run with that floor would have written it. Returns
    ``{"validation_clips", "skipped_files", "thresholds", "frame_thresholds"}``."""
    model, meta = load_checkpoint(Path(checkpoint))
    out = Path(out) if out is not None else Path(checkpoint)
    ensure_writable_folder(out.parent)
    dataset = data if isinstance(data, Dataset) else open_dataset(data)
    skipped, config = SkipLog(), TrainConfig(model=meta["model"])
    rule = DecisionRule.from_dict(meta.get("decision"))
    if clip_floor is not None:
        rule = replace(rule, clip_floor=clip_floor)
    feats = _validation_features(model, dataset, config, skipped, None)
    if not len(feats.clips):
        raise DataError(f"{dataset.name}: no validation clip could be decoded")
    previous = (np.asarray(meta["thresholds"]), np.asarray(meta.get("frame_thresholds", meta["thresholds"])))
    clip_thresholds, frame_thresholds = tune_thresholds(model, feats, config, rule, previous)
    training = meta["training"]
    if clip_floor is not None:  # the summary's recipe records the rule the thresholds now follow
        training = copy.deepcopy(training)
        for section in (training.get("config"), (training.get("recipe") or {}).get("decision")):
            if isinstance(section, dict) and "clip_floor" in section:
                section["clip_floor"] = clip_floor
    save_checkpoint(out, model, meta["model"], clip_thresholds.tolist(), frame_thresholds.tolist(), training, rule)
    return {"validation_clips": len(feats.clips), "skipped_files": len(skipped),
            "thresholds": clip_thresholds.tolist(), "frame_thresholds": frame_thresholds.tolist()}


def _validation_features(model: nn.Module, dataset: Dataset, config: TrainConfig, skipped: SkipLog,
                         cache: dict | None) -> Batch:
    """Features and targets of ``_validation_examples``."""
    return _features(model, _validation_examples(dataset, config), skipped, cache, lambda done, total: None)


def _validation_examples(dataset: Dataset, config: TrainConfig) -> list[Example]:
    """``dataset``'s validation split (``config.limit`` of it) cut into 5-s clips."""
    return clip_examples(dataset.sample("validation", config.limit, config.seed), CLIP_SECONDS)


def _model_config(config: TrainConfig, dataset: Dataset, examples: list[Example]) -> dict:
    """The model's configuration: the user's, plus what the data decides (the size of precomputed
    features, the composers of a composer head)."""
    model_config = dict(config.model_config)
    if not dataset.has_audio:
        if not accepts_features(config.model):
            usable = ", ".join(name for name in list_models() if accepts_features(name))
            raise DataError(f"{dataset.name} holds precomputed features, not audio; models that use them: {usable}")
        model_config["input_dim"] = int(examples[0].features.shape[0])
    return model_config | model_class(config.model).data_config(model_config, examples)


def _transfer(model: nn.Module, checkpoint: str) -> None:
    """Copy every layer but the heads from a trained model of the same kind and freeze it."""
    source, meta = load_checkpoint(Path(checkpoint))
    if type(source) is not type(model):
        raise ParameterError(f"{checkpoint} holds a {meta['model']!r} model, not a {type(model).__name__}")
    own = model.state_dict()
    copied = {k: v for k, v in source.state_dict().items()
              if k.split(".")[0] not in model.head_names and k in own and own[k].shape == v.shape}
    model.load_state_dict(copied, strict=False)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.split(".")[0] in model.head_names


def fit_network(model, train_feats, valid_feats, config, rng, state_path, log_path, labels, progress,
                 ranks: Ranks = Ranks()):
    """Epochs of AdamW with a one-cycle schedule; resumable; returns (history, best). 2-D convolution
    weights are kept channels-last, which oneDNN runs faster on the CPU (a training step of timbrenet
    takes ~18 % less time); only the layout changes, so results differ from a contiguous run by rounding.
    Under torchrun (``ranks``) each rank takes its share of every epoch (``batch_size`` is per rank);
    rank 0 validates, decides and writes; the others return an empty best."""
    model.to(ranks.device, memory_format=torch.channels_last)
    forward = distributed.wrap(model, ranks)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(train_feats.clips) / ranks.world) / config.batch_size)
    schedule = _one_cycle(optimiser, config, config.epochs * steps_per_epoch)
    start_epoch, best, history = 0, {"map": -1.0, "epoch": -1, "state": None}, []
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if not _same_training(state["config"], config) or state["labels"] != labels:
            raise DataError(f"{state_path} belongs to another training run; delete it to start again")
        if len(state["rng"]) != ranks.world:
            raise DataError(f"{state_path} was written by {len(state['rng'])} training processes, not "
                            f"{ranks.world}; resume with as many")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
        rng.bit_generator.state = state["rng"][ranks.rank]
        torch.set_rng_state(state["torch_rng"])

    def fit_to_budget(step_seconds: float, steps_done: int):
        return _budget_schedule(optimiser, config, step_seconds, steps_done, steps_per_epoch)

    for epoch in range(start_epoch, config.epochs):
        spent = sum(h["seconds"] for h in history)
        if distributed.agree(epoch - best["epoch"] > config.patience or schedule.last_epoch >= schedule.total_steps
                             or bool(config.budget_seconds and spent >= config.budget_seconds), ranks):
            break
        started = time.perf_counter()
        train_loss, schedule = _train_epoch(
            model, forward, train_feats, optimiser, schedule, config, rng,
            lambda done, total: progress and progress(f"epoch {epoch + 1}", done, total),
            fit_to_budget if epoch == 0 and config.budget_seconds else None, ranks)
        rng_states = distributed.gather(rng.bit_generator.state, ranks)
        if not ranks.main:
            continue
        valid_loss, scores, _ = _evaluate(model, valid_feats, config)
        val_map = _validation_map(valid_feats, scores)
        seconds = round(time.perf_counter() - started, 1)
        if config.budget_seconds and schedule.last_epoch < schedule.total_steps:  # re-plan at the pace so far
            schedule = fit_to_budget((spent + seconds) / schedule.last_epoch, schedule.last_epoch)
        history.append({"epoch": epoch + 1, "train_loss": round(train_loss, 5), "valid_loss": round(valid_loss, 5),
                        "valid_map": round(val_map, 5), "learning_rate": schedule.get_last_lr()[0],
                        "seconds": seconds})
        if val_map >= best["map"]:  # on a tie the later, longer-trained model
            best = {"map": val_map, "epoch": epoch,
                    "state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
        # the state first: a kill between the two writes leaves the log behind the state, never ahead of it
        atomic_torch_save({"config": asdict(config), "labels": labels, "model": model.state_dict(),
                           "optimiser": optimiser.state_dict(),
                           "schedule": schedule.state_dict(), "epoch": epoch, "best": best, "history": history,
                           "rng": rng_states, "torch_rng": torch.get_rng_state()}, state_path)
        atomic_write_text(log_path, "".join(json.dumps(row) + "\n" for row in history))
    return history, best


def _one_cycle(optimiser, config: TrainConfig, total_steps: int):
    return torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=total_steps)


def _budget_schedule(optimiser, config: TrainConfig, step_seconds: float, steps_done: int, steps_per_epoch: int):
    """A one-cycle schedule over as many steps as the time budget holds at ``step_seconds`` per step
    (at least the ``steps_done`` already taken, at most ``config.epochs`` epochs), advanced past those
    steps: the learning rate comes down before the time runs out instead of being cut off at its
    peak, and training stops, mid-epoch if need be, when the schedule ends. Planned after the first
    steps and again after every epoch, as the pace becomes known."""
    fits = int(config.budget_seconds // max(step_seconds, 1e-6))
    schedule = _one_cycle(optimiser, config, min(config.epochs * steps_per_epoch, max(steps_done, fits)))
    with warnings.catch_warnings():  # fast-forwarding a new schedule is not stepping it before the optimiser
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        for _ in range(steps_done):
            schedule.step()
    return schedule


def _fit_classical(model, train_feats: Batch, valid_feats: Batch, config: TrainConfig):
    """One fit of a scikit-learn pipeline; returns (history, best) shaped like a one-epoch run."""
    started = time.perf_counter()
    model.fit_arrays(train_feats.inputs.float().numpy(), train_feats.clips.numpy())
    valid_loss, scores, _ = _evaluate(model, valid_feats, config)
    val_map = _validation_map(valid_feats, scores)
    history = [{"epoch": 1, "train_loss": None, "valid_loss": round(valid_loss, 5), "valid_map": round(val_map, 5),
                "learning_rate": None, "seconds": round(time.perf_counter() - started, 1)}]
    return history, {"map": val_map, "epoch": 0, "state": model.state_dict()}


def _validation_map(feats: Batch, scores: np.ndarray) -> float:
    value = mean_average_precision(feats.clips.numpy(), scores, feats.mask.numpy())
    return 0.0 if math.isnan(value) else value


@torch.no_grad()
def _features(model: nn.Module, examples: list[Example], skipped: SkipLog, cache: dict | None,
              progress: Callable[[int, int], None]) -> Batch:
    """Front-end outputs of every example (its precomputed features for datasets without audio), with
    clip, frame and composer targets."""
    model.eval()
    if model.frontend is None:
        inputs, kept = torch.from_numpy(np.stack([ex.features for ex in examples])), list(examples)
    else:
        store = {} if cache is None else cache.setdefault(_signature(model), {})  # example id -> features or failure
        _frontend_outputs(model, examples, store, progress)
        skipped.failures.update({ex.id: store[ex.id] for ex in examples if isinstance(store[ex.id], str)})
        kept = [ex for ex in examples if not isinstance(store[ex.id], str)]
        if not kept:
            raise DataError(f"no example could be decoded ({len(skipped)} failed, e.g. {skipped.reasons[:1]})")
        inputs = torch.stack([store[ex.id] for ex in kept])
    labels = model.labels
    frames = model.forward_features(inputs[:1].float())["frame_logits"].shape[1] if model.frame_level else 1
    empty = np.zeros((frames, len(labels)), np.float32)
    composers = {name: i for i, name in enumerate(getattr(model, "composers", []))}
    return Batch(
        inputs,
        torch.from_numpy(np.stack([clip_target(ex.labels, labels) for ex in kept])),
        torch.from_numpy(np.stack([[float(ex.is_known(label)) for label in labels] for ex in kept]).astype(np.float32)),
        torch.from_numpy(np.stack([frame_target(ex.segments, labels, frames, model.hop_seconds)
                                   if ex.segments is not None and model.frame_level else empty for ex in kept])),
        torch.tensor([ex.segments is not None and model.frame_level for ex in kept]),
        torch.tensor([composers.get(ex.metadata.get("composer"), -1) for ex in kept]),
        torch.tensor([is_single_note(ex) for ex in kept]))


def _signature(model: nn.Module) -> str:
    """The key of a feature cache's store: models with equal front-ends share their features."""
    return json.dumps([type(model.frontend).__name__, model.config.get("frontend")])


@torch.no_grad()
def _frontend_outputs(model: nn.Module, examples: list[Example], store: dict,
                      progress: Callable[[int, int], None] = lambda done, total: None) -> None:
    """Add to ``store`` (example id -> features, or why it failed to decode) the front-end outputs of the
    ``examples`` it lacks (float16 where a clip's features are large)."""
    todo = [ex for ex in examples if ex.id not in store]
    done = len(examples) - len(todo)
    for audio, batch in decode_batches(todo, model.sample_rate, CLIP_SECONDS, fresh := SkipLog()):
        x = model.frontend(torch.from_numpy(audio))
        x = x.half() if x[0].numel() > 10_000 else x
        store.update({ex.id: row for ex, row in zip(batch, x)})
        done += len(batch)
        progress(done, len(examples))
    store.update(fresh.failures)


def extra_train_examples(config: TrainConfig) -> list[Example]:
    """The train splits of ``config.extra_train``, their ids prefixed with the spec's position (``2:train-000001``)
    so that they never collide with the main data's ids (corpora rendered by ``synth`` share id patterns)."""
    return [replace(ex, id=f"{position}:{ex.id}")
            for position, spec in enumerate(config.extra_train, start=2)
            for ex in open_dataset(spec).sample("train", config.limit, config.seed)]


def without_banks(examples: list[Example], banks: tuple[str, ...]) -> list[Example]:
    """``examples`` less the rendered clips with a part played by one of ``banks`` (ParameterError if a
    bank plays no part of any of them, e.g. a misspelt name)."""
    banks = set(banks)
    played = [{part.get("bank") for part in ex.metadata.get("parts") or []} for ex in examples]
    if unknown := sorted(banks - set().union(*played)):
        raise ParameterError(f"no training clip uses the bank(s) {', '.join(unknown)}; "
                             f"bank names are listed in the corpus manifest's parts")
    return [ex for ex, used in zip(examples, played) if not used & banks]


def is_single_note(example: Example) -> bool:
    """Whether a rendered clip is one instrument playing one note (its only part's material is "note")."""
    parts = example.metadata.get("parts") or []
    return len(parts) == 1 and parts[0].get("material") == "note"


def _train_epoch(model: nn.Module, forward, feats: Batch, optimiser, schedule, config: TrainConfig,
                 rng: np.random.Generator, progress: Callable[[int, int], None], fit_to_budget=None,
                 ranks: Ranks = Ranks()):
    """One pass over the training clips (this rank's share of them; cut short when the schedule ends)
    through ``forward`` (the model's ``forward_features``, or DDP around it); returns the mean loss and
    the schedule, replaced by ``fit_to_budget(seconds per step, steps done)`` once the pace is known."""
    model.train()
    order = distributed.shard(epoch_order(feats.clips, config.solo_share, rng, feats.single_note.numpy(),
                                          config.note_share), ranks)
    steps = math.ceil(len(order) / config.batch_size)
    crop = None  # (input frames, input frames per output frame) of each training stretch
    release = None  # single notes let go early
    if model.augmentation == "logmel" and model.frame_level:
        hop = model.frontend.config.hop_seconds
        pool = round(model.hop_seconds / hop)
        crop = (round(config.crop_seconds / hop), pool) if config.crop_seconds else None
        release = Release(config.release_probability, hop, pool) if config.release_probability else None
    precision = training_precision(config, ranks.device)
    losses, started = [], time.perf_counter()
    for step, start in enumerate(range(0, len(order), config.batch_size)):
        batch = feats.take(torch.from_numpy(order[start:start + config.batch_size]))
        # whole clips for a share of batches (drawn only when that share is above 0: recipes without it train as before)
        if crop and not (config.whole_clip_share and rng.random() < config.whole_clip_share):
            batch = random_crop(batch, *crop, rng)
        batch = augment(replace(batch, inputs=batch.inputs.float()), model.augmentation, config.mixture_probability, rng,
                        release)
        batch = batch.to(ranks.device)
        with torch.autocast(torch.device(ranks.device).type, torch.bfloat16, enabled=precision == "bfloat16"):
            out = forward(batch.inputs)
        loss = _loss(model, {key: value.float() for key, value in out.items()}, batch, config) + model.penalty()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        progress(step + 1, steps)
        elapsed = time.perf_counter() - started
        if fit_to_budget and (step + 1 in (PACE_STEPS, steps) or elapsed >= config.budget_seconds / 20):
            schedule, fit_to_budget = fit_to_budget(elapsed / (step + 1), step + 1), None
        if schedule.last_epoch >= schedule.total_steps:
            break
    return float(np.mean(losses)), schedule


def training_precision(config: TrainConfig, device: str) -> str:
    """The precision the training forward pass runs in on ``device``: ``config.precision``'s bfloat16 where the
    device computes it natively (a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX), else float32."""
    kind = torch.device(device).type
    native = (torch.cuda.is_bf16_supported() if kind == "cuda" else
              kind == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return "bfloat16" if config.precision == "bfloat16" and native else "float32"


@torch.no_grad()
def _evaluate(model: nn.Module, feats: Batch, config: TrainConfig) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean validation loss, clip probabilities ``[n, labels]`` and frame probabilities ``[n, frames, labels]``."""
    model.eval()
    losses, scores, frames = [], [], []
    for start in range(0, len(feats.clips), config.batch_size):
        batch = feats.take(slice(start, start + config.batch_size))
        batch = replace(batch, inputs=batch.inputs.float()).to(next(model.parameters(), torch.empty(0)).device)
        out = model.forward_features(batch.inputs)
        losses.append(_loss(model, out, batch, config).item())
        scores.append(model.probabilities(out["clip_logits"]).cpu().numpy())
        frames.append(model.probabilities(out["frame_logits"]).cpu().numpy())
    return float(np.mean(losses)), np.concatenate(scores), np.concatenate(frames)


def _loss(model: nn.Module, out: dict, target: Batch, config: TrainConfig) -> torch.Tensor:
    """Clip loss over known targets (binary cross-entropy, or cross-entropy against the normalised
    targets for softmax models), weighted frame BCE over clips with known frames, and composer CE."""
    functional = nn.functional
    if model.output_activation == "softmax":
        soft = target.clips / target.clips.sum(dim=1, keepdim=True).clamp(min=1)
        loss = functional.cross_entropy(out["clip_logits"], soft)
    else:
        clip = functional.binary_cross_entropy_with_logits(out["clip_logits"], target.clips, reduction="none")
        loss = (clip * target.mask).sum() / target.mask.sum().clamp(min=1)
        if target.frame_known.any():
            weight = target.frame_known.float()[:, None, None].expand_as(target.frames)
            frame = functional.binary_cross_entropy_with_logits(out["frame_logits"], target.frames, reduction="none")
            loss = loss + config.frame_loss_weight * (frame * weight).sum() / weight.sum()
    if "composer_logits" in out and (target.composers >= 0).any():
        loss = loss + config.composer_loss_weight * functional.cross_entropy(
            out["composer_logits"], target.composers, ignore_index=-1)
    return loss
