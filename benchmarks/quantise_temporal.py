"""A model file whose dilated temporal convolutions run in 8 bits while the rest of the network stays in float.

Usage: python benchmarks/quantise_temporal.py --data out/corpus-default --out Q.onnx [--model M.onnx] [--clips 128]
ONNX Runtime's static quantisation (QDQ: weights int8 per output channel, activations uint8) is calibrated on the
log-mel of the first ``--clips`` clips of the corpus's validation split, cut to the model's analysis window. That
audio is rendered and is never realdev. Only the Conv nodes whose weight belongs to a ``temporal`` layer are
quantised. In v0.10.0 those are the two members' 512 -> 256 channel, 3-tap layers, 58 % of the network's time on
an AVX2 CPU. The file keeps the model's metadata (labels, thresholds, decision rule), adds ``"quantised":
"temporal"`` to it, and is used as any model file (`identify --checkpoint Q.onnx`, the benchmarks' ``--checkpoint``).
The script prints the milliseconds of a batch of 8 windows on one thread for both files.

Session 37 (docs/notebook/EXPERIMENTS.md) measured two quantisations. The whole network in 8 bits lost 0.015-0.019
top-1 on both legal judges. The temporal layers alone kept every top-1 on both, at 1.44x the network's speed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from timbrescope.data.specs import open_dataset
from timbrescope.features.logmel import FrontendConfig, log_mel
from timbrescope.fileio import atomic_write
from timbrescope.inference import BATCH_WINDOWS, default_onnx_path
from timbrescope.models.onnx_export import METADATA_KEY


def calibration_features(data: str, clips: int, frontend: FrontendConfig, seconds: float) -> np.ndarray:
    """Log-mel ``[clips, n_mels, frames]`` of the first ``clips`` validation examples, each cut or padded to
    ``seconds`` (the model's analysis window)."""
    examples = open_dataset(data).split("validation")[:clips]
    if not examples:
        raise SystemExit(f"{data}: no validation clips to calibrate on")
    samples = round(seconds * frontend.sample_rate)
    audio = np.stack([np.pad(y[:samples], (0, max(0, samples - len(y))))
                      for y in (e.load_audio(frontend.sample_rate) for e in examples)])
    return log_mel(audio, frontend)


class _Batches(CalibrationDataReader):
    def __init__(self, features: np.ndarray):
        self._batches = iter([{"log_mel": features[i:i + BATCH_WINDOWS]}
                              for i in range(0, len(features), BATCH_WINDOWS)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def metadata(model: onnx.ModelProto) -> dict:
    """The timbrescope metadata of an exported model (configuration, labels, thresholds, decision rule)."""
    return json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))


def temporal_nodes(model: onnx.ModelProto) -> list[str]:
    """The names of the Conv nodes whose weight is a ``temporal`` layer's."""
    return [node.name for node in model.graph.node
            if node.op_type == "Conv" and ".temporal." in f".{node.input[1]}"]


def quantise(source: Path, features: np.ndarray, out: Path) -> None:
    """Write ``source`` with its temporal convolutions quantised (calibrated on ``features``) to ``out``."""
    model = onnx.load(source)
    nodes = temporal_nodes(model)
    if not nodes:
        raise SystemExit(f"{source}: no temporal convolution to quantise")
    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantised = Path(tmp) / "prepared.onnx", Path(tmp) / "quantised.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantised), _Batches(features), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_quantize=nodes)
        result = onnx.load(quantised)
    del result.metadata_props[:]
    entry = result.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({**metadata(model), "quantised": "temporal"})
    atomic_write(out, lambda tmp: tmp.write_bytes(result.SerializeToString()))


def batch_milliseconds(path: Path, batch: np.ndarray, runs: int = 30) -> float:
    """Mean milliseconds of one run of ``path`` on ``batch`` with one ONNX Runtime thread, after 3 warm-up runs."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, {"log_mel": batch})
    started = time.perf_counter()
    for _ in range(runs):
        session.run(None, {"log_mel": batch})
    return (time.perf_counter() - started) / runs * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=default_onnx_path(), help="an exported model file (.onnx)")
    parser.add_argument("--data", required=True, help="a rendered corpus whose validation split calibrates")
    parser.add_argument("--clips", type=int, default=128)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    meta = metadata(onnx.load(args.model))
    frontend = FrontendConfig(**meta["config"]["frontend"])
    features = calibration_features(args.data, args.clips, frontend, meta["decision"]["window_seconds"])
    quantise(args.model, features, args.out)
    batch = features[:BATCH_WINDOWS]
    print(f"{args.out}: temporal convolutions in 8 bits, calibrated on {len(features)} validation clips of "
          f"{args.data}\n")
    print("| file | ms per batch of 8 windows, one thread |\n|---|---|")
    for path in (args.model, args.out):
        print(f"| {path.name} | {batch_milliseconds(path, batch):.1f} |")


if __name__ == "__main__":
    main()
