"""Do DawDreamer's Faust physical models sound like their instruments? A judge before training on them.

The issue asks to train on the Faust models of ``physmodels.lib`` (PyPI ``dawdreamer``, GPL-3.0) "where they
sound like the instrument" and to reject what sounds synthetic. No one listens here, so networks trained
without them listen instead: each model plays single notes (2 s, five pitches in its label's range) at a few
settings of its own parameters, and each checkpoint names the top-3 instruments of every note. A model
that the networks do not hear as its label (top-3 hits well under half) is rejected.

    pip install dawdreamer==0.9.0
    python benchmarks/faust_models.py --checkpoint build/v062.onnx build/run38.onnx

Prints a Markdown table: per model and setting, top-1 and top-3 hits of the intended label per checkpoint,
and the label heard most often.
"""

from __future__ import annotations

import argparse
import collections
import sys

import numpy as np

from timbrescope.errors import reported
from timbrescope.inference import Recognizer
from timbrescope.synth.multisample import SAMPLE_RATE, Instrument, faust_take
from timbrescope.taxonomy import PLAYABLE_RANGE

NOTE_SECONDS, HOLD_SECONDS = 2.0, 1.5

# (model, label, the physmodels.lib function, parameter settings to try: {name suffix: value})
MODELS = (
    ("clarinet", "clarinet", "pm.clarinet_ui_MIDI",
     ({}, {"reedStiffness": 0.2, "bellOpening": 0.3}, {"reedStiffness": 0.8, "bellOpening": 0.7})),
    ("brass", "trumpet", "pm.brass_ui_MIDI", ({}, {"lipsTension": 0.3}, {"lipsTension": 0.8})),
    ("flute", "flute", "pm.flute_ui_MIDI", ({}, {"mouthPosition": 0.3}, {"mouthPosition": 0.7})),
    ("violin", "violin", "pm.violin_ui_MIDI",
     ({}, {"pressure": 0.3, "position": 0.2}, {"pressure": 0.7, "position": 0.6})),
    ("electric guitar", "electric_guitar", "pm.elecGuitar_ui_MIDI", ({}, {"pluckPosition": 0.2})),
    ("steel guitar", "acoustic_guitar", "pm.guitar_ui_MIDI", ({}, {"pluckPosition": 0.2})),
    ("nylon guitar", "acoustic_guitar", "pm.nylonGuitar_ui_MIDI", ({}, {"pluckPosition": 0.2})),
    ("formant voice", "voice", "pm.SFFormantModelFofSmooth_ui_MIDI", ({}, {"vowel": 2.0}, {"vowel": 4.0})),
)


def render(function: str, label: str, settings: dict[str, float], keys: list[int]) -> list[np.ndarray]:
    """One (samples,) float32 note per key at velocity 100, peak-normalised to 0.5."""
    model = Instrument("judged", label, "dawdreamer", "", ("faust", function, tuple(settings.items())),
                       hold=HOLD_SECONDS, release=NOTE_SECONDS - HOLD_SECONDS)
    audio = faust_take(model, [(key, 100) for key in keys])
    step = round(NOTE_SECONDS * SAMPLE_RATE)
    notes = [audio[i * step:(i + 1) * step] for i in range(len(keys))]
    return [note * (0.5 / (np.abs(note).max() or 1.0)) for note in notes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", nargs="+", required=True, help="models trained without these renders")
    args = parser.parse_args(argv)
    judges = [Recognizer(path) for path in args.checkpoint]
    header = " | ".join(f"{path} top-1 / top-3" for path in args.checkpoint)
    print(f"| model (label) | setting | {header} | heard most (top-1) |")
    print("|---|---|" + "---|" * len(judges) + "---|")
    for model, label, function, grid in MODELS:
        low, high = PLAYABLE_RANGE[label]
        keys = [int(k) for k in np.linspace(max(low, 40), min(high, 84), 5).round()]
        for settings in grid:
            notes = render(function, label, settings, keys)
            cells, heard = [], collections.Counter()
            for judge in judges:
                ranked = [[item["label"] for item in judge.identify(note, SAMPLE_RATE).instruments[:3]]
                          for note in notes]
                heard.update(top[0] for top in ranked)
                cells.append(f"{sum(top[0] == label for top in ranked)} / {sum(label in top for top in ranked)}"
                             f" of {len(notes)}")
            setting = ", ".join(f"{k} {v}" for k, v in settings.items()) or "defaults"
            print(f"| {model} ({label}) | {setting} | {' | '.join(cells)} | {heard.most_common(1)[0][0]} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(reported(main, "benchmarks/faust_models.py"))
