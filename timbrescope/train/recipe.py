"""Training recipes: a TOML file (or a dict of the same shape) that says everything a training run
does, resolved into one ``Recipe`` by ``resolve_recipe`` for ``train``, ``learning-curve`` and ``benchmark``.

Sections and keys (every key optional; ``timbrescope/recipes/*.toml`` are the shipped recipes)::

    seed = 1                                   # numpy and torch seeds of the run
    [data]      spec = "out/corpus-default"    # data spec: its train and validation splits
                extra_train = ["out/corpus-notes"]   # data specs whose train splits join the training
                exclude_banks = []             # rendered banks whose clips are left out (held-out-bank studies)
                limit = 0                      # at most this many examples per split (0: all)
    [model]     name = "timbrenet"             # a registered model (``timbrescope.models.list_models``)
                config = {}                    # its configuration (sizes, front-end)
                transfer_from = ""             # a checkpoint whose layers (all but the heads) are copied, frozen
                members = 1                    # networks trained (seeds seed, seed + 1, …) and averaged as one model
    [sampling]  solo_share, note_share         # shares of single-instrument / single-note draws per epoch
                crop_seconds                   # train on random stretches of this length (log-mel models)
                whole_clip_share               # share of batches on whole clips instead (short notes in a 5-s window)
    [augment]   mixture_probability            # share of draws mixed with another clip
                release_probability            # share of single-note draws let go early (short notes)
    [optimiser] batch_size, learning_rate, weight_decay    # AdamW
                precision = "float32"          # "bfloat16": the forward pass under autocast where the device
                                               # computes it natively (float32 elsewhere; the summary says which)
    [schedule]  epochs, patience, budget_minutes           # one-cycle; early stop; fit into a time budget
    [loss]      frame_loss_weight, composer_loss_weight
    [decision]  clip_floor                     # clip thresholds are tuned from this value up (default 0.05)
    [export]    quantise = "none"              # "temporal": `export` runs the temporal convolutions in 8 bits
                calibration_clips = 128        # validation clips of [data] spec that calibrate those 8 bits

Precedence: ``TrainConfig``'s defaults < the model's ``training_defaults`` (a reference system's batch
size and learning rate, timbrenet's shares) < the recipe < ``--set section.key=value`` overrides. The
resolved recipe is saved in the checkpoint (``training["recipe"]``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

from timbrescope.errors import ParameterError
from timbrescope.models.onnx_export import QUANTISATIONS
from timbrescope.models.registry import training_defaults

PRECISIONS = ("float32", "bfloat16")  # of the training forward pass (weights, gradients and AdamW stay float32)

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
    composer_loss_weight: float = 0.5
    mixture_probability: float = 0.3
    release_probability: float = 0.0  # share of single-note draws let go 0.1-1.5 s after onset (log-mel models)
    crop_seconds: float | None = None  # train on a random stretch of this length of each clip (log-mel models)
    whole_clip_share: float = 0.0  # share of batches trained on whole clips instead of stretches
    solo_share: float | None = None  # share of each epoch's draws that are single-instrument clips (None: as is)
    note_share: float | None = None  # share of the draws that are single notes (part of solo_share; None: as is)
    exclude_banks: tuple[str, ...] = ()  # rendered banks whose training clips are left out (held-out-bank studies)
    extra_train: tuple[str, ...] = ()  # data specs whose train splits are trained on too (validation stays the main one's)
    seed: int = 0
    limit: int | None = None  # at most this many examples per split (quick experiments)
    budget_seconds: float | None = None  # training time to fit the epochs and learning-rate schedule into
    transfer_from: str | None = None  # checkpoint whose layers (all but the heads) are copied and frozen
    clip_floor: float = 0.05  # clip thresholds are tuned from this value up (timeline.DecisionRule)
    members: int = 1  # networks trained with seeds seed, seed + 1, … and written as one averaged model (ensemble)
    quantise: str = "none"  # "temporal": the ONNX export runs the temporal convolutions in 8 bits (onnx_export)
    calibration_clips: int = 128  # validation clips of the data spec that calibrate the 8-bit layers
    precision: str = "float32"  # "bfloat16": the training forward pass under autocast (loop.training_precision)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise ParameterError(f"epochs, batch size and learning rate must be positive, got "
                                 f"{self.epochs}, {self.batch_size}, {self.learning_rate}")
        if self.solo_share is not None and not 0 < self.solo_share < 1:
            raise ParameterError(f"the solo share must lie strictly between 0 and 1, got {self.solo_share}")
        if not (0 <= self.mixture_probability <= 1 and 0 <= self.release_probability <= 1):
            raise ParameterError(f"augmentation probabilities must lie in 0-1, got mixture "
                                 f"{self.mixture_probability}, release {self.release_probability}")
        if self.crop_seconds is not None and not self.crop_seconds > 0:
            raise ParameterError(f"the training crop must be longer than 0 s, got {self.crop_seconds}")
        if not 0 <= self.whole_clip_share <= 1:
            raise ParameterError(f"the whole-clip share must lie in 0-1, got {self.whole_clip_share}")
        if self.members < 1:
            raise ParameterError(f"a model has at least one member network, got {self.members}")
        if not 0.05 <= self.clip_floor <= 0.95:
            raise ParameterError(f"the clip-threshold floor must lie in 0.05-0.95, got {self.clip_floor}")
        if self.quantise not in QUANTISATIONS:
            raise ParameterError(f"export.quantise must be one of {', '.join(QUANTISATIONS)}, got {self.quantise!r}")
        if self.precision not in PRECISIONS:
            raise ParameterError(f"optimiser.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.calibration_clips < 1:
            raise ParameterError(f"export.calibration_clips must be 1 or more, got {self.calibration_clips}")
        if self.note_share is not None and not (self.solo_share and 0 < self.note_share < self.solo_share):
            raise ParameterError(f"the note share must lie strictly between 0 and the solo share "
                                 f"({self.solo_share}), got {self.note_share}")


# recipe section -> {recipe key: TrainConfig field}
SECTIONS: dict[str, dict[str, str]] = {
    "data": {"spec": "", "extra_train": "extra_train", "exclude_banks": "exclude_banks", "limit": "limit"},
    "model": {"name": "model", "config": "model_config", "transfer_from": "transfer_from", "members": "members"},
    "sampling": {"solo_share": "solo_share", "note_share": "note_share", "crop_seconds": "crop_seconds",
                 "whole_clip_share": "whole_clip_share"},
    "augment": {"mixture_probability": "mixture_probability", "release_probability": "release_probability"},
    "optimiser": {"batch_size": "batch_size", "learning_rate": "learning_rate", "weight_decay": "weight_decay",
                  "precision": "precision"},
    "schedule": {"epochs": "epochs", "patience": "patience", "budget_minutes": "budget_seconds"},
    "loss": {"frame_loss_weight": "frame_loss_weight", "composer_loss_weight": "composer_loss_weight"},
    "decision": {"clip_floor": "clip_floor"},
    "export": {"quantise": "quantise", "calibration_clips": "calibration_clips"},
}
_TUPLES = {"extra_train", "exclude_banks"}


@dataclass(frozen=True)
class Recipe:
    """A resolved recipe: the data spec trained on and the run's ``TrainConfig``."""

    data: str
    config: TrainConfig

    def to_dict(self) -> dict:
        """The recipe in its file's sections, every key resolved (what the checkpoint keeps)."""
        flat = asdict(self.config)
        out: dict = {"seed": flat["seed"]}
        for section, keys in SECTIONS.items():
            out[section] = {}
            for key, attribute in keys.items():
                value = self.data if section == "data" and key == "spec" else flat[attribute]
                if attribute == "budget_seconds":
                    value = None if value is None else value / 60
                out[section][key] = list(value) if isinstance(value, tuple) else value
        return out


def recipe_path(name: str | Path) -> Path:
    """A recipe file: ``name`` itself when it is a file, else the shipped recipe of that name."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = Path(str(resources.files("timbrescope") / "recipes" / f"{name}.toml"))
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in shipped.parent.glob("*.toml"))
    raise ParameterError(f"recipe {name!r} not found: give a .toml file or one of {', '.join(known)}")


def resolve_recipe(source: str | Path | dict, overrides: Sequence[str] = ()) -> Recipe:
    """The ``Recipe`` of a recipe file (a path or a shipped recipe's name) or dict, with ``overrides``
    (``"section.key=value"``, the value in TOML syntax or a bare string) applied last."""
    if isinstance(source, dict):
        nested = {k: dict(v) if isinstance(v, dict) else v for k, v in source.items()}
    else:
        path = recipe_path(source)
        try:
            nested = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ParameterError(f"{path}: not a valid TOML recipe ({exc})") from None
    for override in overrides:
        key, value = _override(override)
        section, _, name = key.rpartition(".")
        (nested.setdefault(section, {}) if section else nested)[name] = value
    flat, data = {}, ""
    for section, value in nested.items():
        if section == "seed":
            flat["seed"] = value
            continue
        if section not in SECTIONS or not isinstance(value, dict):
            raise ParameterError(f"unknown recipe section {section!r}; sections: seed, {', '.join(SECTIONS)}")
        for key, item in value.items():
            if key not in SECTIONS[section]:
                raise ParameterError(f"unknown key {section}.{key}; keys of [{section}]: "
                                     f"{', '.join(SECTIONS[section])}")
            if section == "data" and key == "spec":
                data = str(item)
                continue
            attribute = SECTIONS[section][key]
            if attribute == "budget_seconds":
                item = None if item in (None, 0) else float(item) * 60
            elif attribute in _TUPLES:
                item = tuple(str(x) for x in item)
            elif attribute in ("limit", "transfer_from") and item in (0, ""):
                item = None
            elif attribute == "model_config" and not isinstance(item, dict):
                raise ParameterError(f"model.config must be a table, e.g. {{multi_label = false}}; got {item!r}")
            flat[attribute] = item
    if not data:
        raise ParameterError("the recipe names no data: set [data] spec (or --set data.spec=SPEC)")
    model = flat.get("model", TrainConfig.model)
    defaults = {f.name: getattr(TrainConfig(), f.name) for f in fields(TrainConfig)} | training_defaults(model)
    return Recipe(data, TrainConfig(**(defaults | flat)))


def _override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ParameterError(f"--set takes section.key=value, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare string: a path, a name
    return key.strip(), parsed
