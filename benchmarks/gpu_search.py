"""Recipe search on a lent GPU machine: a recipe's training features packed small enough to travel, runs of the
recipe with changes trained side by side there, and each run's best weights made into a model file here.

Usage:
  python benchmarks/gpu_search.py pack --recipe R --out DIR [--chunk-mb 56] [--set K=V]  (here, on the CPU)
  python benchmarks/gpu_search.py train DIR OUT --seconds S NAME:SEED[:KEY=VALUE;…] …  (there, every chunk in DIR)
  python benchmarks/gpu_search.py finish DIR RUN.pt OUT.ckpt                           (here)

``pack`` computes what ``timbrescope train`` computes before its first epoch (``loop.training_features``: the
front-end's log-mel of every train and validation clip, with their targets), quantises each clip's log-mel to 8 bits
(largest error 1/510 of the clip's range: 0.04 in natural-log units, 0.17 dB, on the default corpora), compresses it
with xz and cuts the stream into folders ``DIR/chunk-1/`` … of at most ``--chunk-mb`` MB, one per call of the device
tool (64 MiB a call with the working tree, 9.4 MB in session 34; carry small extras such as wheels with the last
chunk); ``DIR/meta/`` holds the recipe, labels, model configuration and targets, and
``DIR/exact-valid.pt`` the unquantised validation features for ``finish``. With DIR ignored by git, each call carries
one chunk and copies it to a folder outside the working tree (``cp -r DIR/chunk-N SEARCH/``); the last carries
DIR/meta and runs ``train SEARCH $OUT …`` there.

``train`` gathers the chunks (``DIR/**/inputs.xz``) and trains one process per run spec through
``loop.fit_network`` (the epochs of ``timbrescope train``) on the GPU: NAME, the seed, and ``--set`` overrides of the
packed recipe joined by ';' (``wide:1:model.config={widths=[32,64,128,256]}``). After ``--seconds`` it stops what
still runs (keeping its best epoch so far, marked incomplete) and writes ``OUT/runs.tar``: per run NAME.pt (best
weights, history) and NAME.log.jsonl. ``finish`` tunes a run's thresholds on the exact validation features and writes
a checkpoint and its ONNX file, to be judged like any other (``realdev_accuracy.py``, ``ensemble_pairs.py``).
Session 34 (docs/notebook/EXPERIMENTS.md): eight runs of 26 epochs side by side took 422 s on one H200.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from timbrescope.data.clips import CLIP_SECONDS, SkipLog
from timbrescope.data.specs import open_dataset
from timbrescope.errors import reported
from timbrescope.models import create_model
from timbrescope.models.checkpoint import export_checkpoint, save_checkpoint
from timbrescope.timeline import DecisionRule
from timbrescope.train import loop
from timbrescope.train.distributed import Ranks
from timbrescope.train.recipe import TrainConfig, resolve_recipe
from timbrescope.train.sampling import Batch


def pack(recipe: str, out: Path, chunk_mb: float, overrides: list[str] = ()) -> None:
    resolved = resolve_recipe(recipe, overrides)
    config = resolved.config
    dataset = open_dataset(resolved.data)
    skipped = SkipLog()
    model, train, valid = loop.training_features(dataset, config, skipped, {},
                                                 lambda done, total: print(f"features {done}/{total}", end="\r"))
    x = torch.cat([train.inputs, valid.inputs]).float().numpy()
    low, high = x.min(axis=(1, 2)), x.max(axis=(1, 2))
    q = np.round((x - low[:, None, None]) / np.maximum(high - low, 1e-6)[:, None, None] * 255).astype(np.uint8)
    stream = lzma.compress(q.tobytes(), preset=6)
    size = int(chunk_mb * 1e6)
    for i, start in enumerate(range(0, len(stream), size), start=1):
        (out / f"chunk-{i}").mkdir(parents=True, exist_ok=True)
        (out / f"chunk-{i}" / "inputs.xz").write_bytes(stream[start:start + size])

    def targets(batch: Batch) -> dict:
        return {"clips": batch.clips, "mask": batch.mask, "frames": np.packbits(batch.frames.numpy() > 0, axis=2),
                "frames_shape": tuple(batch.frames.shape), "frame_known": batch.frame_known,
                "composers": batch.composers, "single_note": batch.single_note}

    buffer = io.BytesIO()
    torch.save({"recipe": resolved.to_dict(), "labels": model.labels, "model_config": model.config,
                "low": low, "high": high, "shape": q.shape, "train_clips": len(train.clips),
                "train": targets(train), "valid": targets(valid)}, buffer)
    (out / "meta").mkdir(exist_ok=True)
    (out / "meta" / "meta.xz").write_bytes(lzma.compress(buffer.getvalue(), preset=6))
    torch.save(valid, out / "exact-valid.pt")
    print(f"{len(train.clips)} train + {len(valid.clips)} validation clips, {len(skipped)} skipped; "
          f"{len(stream) / 1e6:.0f} MB in {-(-len(stream) // size)} chunks")


def _meta(folder: Path) -> dict:
    path = next(folder.glob("**/meta.xz"))
    return torch.load(io.BytesIO(lzma.decompress(path.read_bytes())), weights_only=False)


def _unpack(folder: Path) -> None:
    """The chunks (in order) decompressed into one raw file, ``inputs.u8``, that every run reads."""
    chunks = sorted(folder.glob("**/inputs.xz"), key=lambda p: int(p.parent.name.removeprefix("chunk-")))
    (folder / "inputs.u8").write_bytes(lzma.decompress(b"".join(path.read_bytes() for path in chunks)))


def _load(folder: Path) -> tuple[dict, Batch, Batch]:
    meta = _meta(folder)
    q = torch.from_numpy(np.fromfile(folder / "inputs.u8", np.uint8).reshape(meta["shape"]))
    low = torch.from_numpy(meta["low"])[:, None, None]
    x = (q.float() / 255 * torch.from_numpy(meta["high"] - meta["low"])[:, None, None] + low).half()

    def batch(inputs: torch.Tensor, t: dict) -> Batch:
        frames = np.unpackbits(t["frames"], axis=2)[..., :t["frames_shape"][2]].astype(np.float32)
        return Batch(inputs, t["clips"], t["mask"], torch.from_numpy(frames), t["frame_known"], t["composers"],
                     t["single_note"])
    n = meta["train_clips"]
    return meta, batch(x[:n], meta["train"]), batch(x[n:], meta["valid"])


def _network(meta: dict, config: TrainConfig) -> torch.nn.Module:
    """The packed model's network with ``config``'s model settings over the packed ones."""
    model_config = {k: v for k, v in meta["model_config"].items() if k != "labels"} | config.model_config
    return create_model(config.model, labels=meta["labels"], **model_config)


def _save_run(path: Path, best: dict, history: list, config: dict, complete: bool) -> None:
    """A run's record: its best epoch's weights, validation mAP and epoch, history and configuration."""
    torch.save({"state": best["state"], "best_epoch": best["epoch"] + 1, "map": best["map"], "history": history,
                "config": config, "complete": complete}, path)


def _run(folder: Path, name: str, seed: int, overrides: list[str], threads: int) -> None:
    """One run spec: the packed recipe with ``overrides``, trained on the GPU (CPU without one)."""
    torch.set_num_threads(threads)
    meta, train, valid = _load(folder)
    config = resolve_recipe(meta["recipe"], [f"seed={seed}", *overrides]).config
    torch.manual_seed(config.seed)  # as `train`: the weights are drawn after seeding
    model = _network(meta, config)
    started = time.time()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    runs = folder / "runs"
    history, best = loop.fit_network(model, train, valid, config, np.random.default_rng(config.seed),
                                     runs / f"{name}.state", runs / f"{name}.log.jsonl", model.labels, None,
                                     Ranks(device=device))
    _save_run(runs / f"{name}.pt", best, history, asdict(config), complete=True)
    print(f"{name}: validation mAP {best['map']:.4f} at epoch {best['epoch'] + 1}, {time.time() - started:.0f} s")


def _salvage(runs: Path, name: str) -> None:
    """The best epoch so far of a run stopped by the time limit, marked incomplete."""
    state = torch.load(runs / f"{name}.state", map_location="cpu", weights_only=False)
    _save_run(runs / f"{name}.pt", state["best"], state["history"], state["config"], complete=False)


def train(folder: Path, out: Path, seconds: float, specs: list[str], threads: int) -> None:
    started, runs = time.time(), folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _unpack(folder)
    print(f"unpacked in {time.time() - started:.0f} s", flush=True)
    processes = {}
    for spec in specs:
        name, seed, *rest = spec.split(":", 2)
        overrides = [o for o in (rest[0].split(";") if rest else []) if o]
        processes[name] = subprocess.Popen(
            [sys.executable, __file__, "run", str(folder), name, seed, json.dumps(overrides), str(threads)],
            stdout=open(runs / f"{name}.out", "w"), stderr=subprocess.STDOUT)
    while time.time() < started + seconds and any(p.poll() is None for p in processes.values()):
        time.sleep(1 if time.time() - started < 10 else 10)
        epochs = {n: len((runs / f"{n}.log.jsonl").read_text().splitlines()) if (runs / f"{n}.log.jsonl").exists()
                  else 0 for n in processes}
        print(f"{time.time() - started:.0f} s, epochs done: {epochs}", flush=True)
    for name, process in processes.items():
        if process.poll() is None:
            process.kill()
            process.wait()
            if (runs / f"{name}.state").exists():
                _salvage(runs, name)
        print(f"{name} (exit {process.returncode}): {(runs / f'{name}.out').read_text()[-400:]}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "runs.tar", "w") as tar:
        for path in sorted(runs.glob("*.pt")) + sorted(runs.glob("*.log.jsonl")):
            tar.add(path, arcname=path.name)
    print(f"{time.time() - started:.0f} s in all; {out / 'runs.tar'}")


def finish(folder: Path, run_path: Path, out: Path) -> None:
    meta, run = _meta(folder), torch.load(run_path, weights_only=False)
    config = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in run["config"].items()})
    model = _network(meta, config)
    model.load_state_dict(run["state"])
    rule = DecisionRule(window_seconds=CLIP_SECONDS, clip_floor=config.clip_floor)
    clip, frame = loop.tune_thresholds(model, torch.load(folder / "exact-valid.pt", weights_only=False), config, rule)
    summary = {"best_epoch": run["best_epoch"], "valid_map": round(run["map"], 5), "epochs_run": len(run["history"]),
               "complete": run["complete"], "config": run["config"], "history": run["history"],
               "trained_by": "benchmarks/gpu_search.py (8-bit features)"}
    save_checkpoint(out, model, config.model, clip.tolist(), frame.tolist(), summary, rule)
    export_checkpoint(out, out.with_suffix(".onnx"))
    print(f"{out} and its .onnx: validation mAP {run['map']:.4f} at epoch {run['best_epoch']}"
          f"{'' if run['complete'] else ' (stopped early)'}")


def main() -> None:
    if sys.argv[1:2] == ["run"]:  # one run spec, in a process of its own (``train``)
        _, _, folder, name, seed, overrides, threads = sys.argv
        return _run(Path(folder), name, int(seed), json.loads(overrides), int(threads))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack")
    p.add_argument("--recipe", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--chunk-mb", type=float, default=56)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a recipe override")
    t = verbs.add_parser("train")
    t.add_argument("folder", type=Path)
    t.add_argument("out", type=Path)
    t.add_argument("--seconds", type=float, required=True)
    t.add_argument("--threads", type=int, default=2, help="PyTorch threads per run")
    t.add_argument("specs", nargs="+")
    f = verbs.add_parser("finish")
    f.add_argument("folder", type=Path)
    f.add_argument("run", type=Path)
    f.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.verb == "pack":
        pack(args.recipe, args.out, args.chunk_mb, args.set)
    elif args.verb == "train":
        train(args.folder, args.out, args.seconds, args.specs, args.threads)
    else:
        finish(args.folder, args.run, args.out)


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/gpu_search.py"))
