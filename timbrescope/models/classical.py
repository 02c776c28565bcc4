"""Classical baselines: real scikit-learn pipelines (scaler fitted on the training data only, then the
estimator) on MFCC summaries of each clip, or on a dataset's precomputed features.

Single-label training data (one target per clip) fits the estimator as a multi-class classifier;
multi-label data fits kNN and random forests on the multi-hot targets directly, the others through
``OneVsRestClassifier``. Scores are ``predict_proba`` where the
estimator has it, else its decision function through a sigmoid (softmax when multi-class).
Targets a dataset left unannotated count as absent here: scikit-learn has no masks.
The fitted pipeline travels inside the checkpoint as skops bytes (a safe format; trees are the one
type we trust explicitly, because we wrote them).
"""

from __future__ import annotations

import importlib
import warnings
from functools import partial

import numpy as np
import torch

from timbrescope.data.clips import CLIP_SECONDS
from timbrescope.errors import ModelError
from timbrescope.features.classic import ClassicConfig, SummaryFrontend
from timbrescope.models.base import RecognitionModel, clip_outputs
from timbrescope.models.registry import register_model

# Registry name -> (scikit-learn class, its settings); scikit-learn is imported only when one is fitted,
# so that loading a network for inference does not pay for it.
ESTIMATORS = {
    "knn": ("sklearn.neighbors.KNeighborsClassifier", {"n_neighbors": 5}),
    "adaboost": ("sklearn.ensemble.AdaBoostClassifier", {"n_estimators": 100, "random_state": 0}),
    "sgd-perceptron": ("sklearn.linear_model.SGDClassifier", {"loss": "perceptron", "random_state": 0}),
    "sgd-hinge": ("sklearn.linear_model.SGDClassifier", {"loss": "hinge", "random_state": 0}),
    "sgd-log": ("sklearn.linear_model.SGDClassifier", {"loss": "log_loss", "random_state": 0}),
    "sgd-modified-huber": ("sklearn.linear_model.SGDClassifier", {"loss": "modified_huber", "random_state": 0}),
    "random-forest": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 100, "random_state": 0}),
    "logreg": ("sklearn.linear_model.LogisticRegression", {"max_iter": 2000}),
}
NATIVE_MULTI_LABEL = {"knn", "random-forest"}  # fitted on the multi-hot targets directly
_TRUSTED = ["sklearn.tree._tree.Tree"]


class ClassicalModel(RecognitionModel):
    """MFCC summary ``[batch, 120]`` (or features ``[batch, input_dim]``) -> one score per clip."""

    frame_level = False
    head_names = ()
    accepts_features = True
    fitted_once = True

    def __init__(self, labels: list[str], estimator: str, frontend: dict | None = None, input_dim: int | None = None):
        super().__init__()
        self.labels = list(labels)
        self.estimator = estimator
        self.frontend = None if input_dim else SummaryFrontend(ClassicConfig(**(frontend or {})))
        self.config = {"labels": self.labels, "frontend": None if input_dim else self.frontend.config.to_dict(),
                       "input_dim": input_dim}
        self.pipeline = None  # a fitted sklearn Pipeline
        self.single_label = True
        self.output_activation = "softmax"

    @property
    def hop_seconds(self) -> float:
        return CLIP_SECONDS

    def fit_arrays(self, features: np.ndarray, targets: np.ndarray) -> ClassicalModel:
        """Fit on ``features [n, dim]`` and multi-hot ``targets [n, labels]``."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        self.single_label = bool((targets.sum(axis=1) == 1).all())
        path, settings = ESTIMATORS[self.estimator]
        module, name = path.rsplit(".", 1)
        estimator = getattr(importlib.import_module(module), name)(**settings)
        if self.estimator == "knn":
            estimator.set_params(n_neighbors=min(estimator.n_neighbors, len(features)))
        if self.single_label:
            y = targets.argmax(axis=1)
        else:
            y = targets.astype(int)
            if self.estimator not in NATIVE_MULTI_LABEL:
                estimator = OneVsRestClassifier(estimator)
        try:
            with warnings.catch_warnings():  # the reference settings, kept as they are, even where they stop early
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.pipeline = Pipeline([("scale", StandardScaler()), ("classify", estimator)]).fit(features, y)
        except ValueError as exc:  # e.g. one class only in a tiny training set
            raise ModelError(f"{self.estimator}: cannot fit on these {len(features)} examples ({exc})") from None
        self.output_activation = "softmax" if self.single_label else "sigmoid"
        return self

    def forward_features(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.pipeline is None:
            raise ModelError(f"{self.estimator}: the pipeline is not fitted yet")
        x = features.detach().cpu().numpy().astype(np.float64)
        if hasattr(self.pipeline, "predict_proba"):
            scores = self._spread(self.pipeline.predict_proba(x))
            logits = np.log(np.clip(scores, 1e-6, 1.0)) if self.single_label else \
                np.log(np.clip(scores, 1e-6, 1 - 1e-6) / np.clip(1 - scores, 1e-6, 1.0))
        else:  # perceptron and hinge: margins serve as logits
            logits = self._spread(self.pipeline.decision_function(x), fill=-30.0)
        logits = torch.from_numpy(np.asarray(logits, np.float32))
        return clip_outputs(logits, logits, features.float())

    def _spread(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Columns of the classes the estimator saw -> one column per label (absent classes get ``fill``)."""
        if isinstance(values, list):  # native multi-label: one [n, classes seen] array per label
            classes = self.pipeline[-1].classes_
            values = np.stack([v[:, list(c).index(1)] if 1 in c else np.zeros(len(v)) for v, c in zip(values, classes)],
                              axis=1)
        values = np.asarray(values)
        if values.ndim == 1:  # binary decision function: the positive class's margin
            values = np.stack([-values, values], axis=1)
        if not self.single_label:
            return values
        out = np.full((len(values), len(self.labels)), fill)
        out[:, self.pipeline.classes_] = values
        return out

    def get_extra_state(self) -> dict:
        import skops.io

        payload = b"" if self.pipeline is None else skops.io.dumps(self.pipeline)
        return {"pipeline": torch.frombuffer(bytearray(payload), dtype=torch.uint8) if payload else torch.zeros(0),
                "single_label": self.single_label}

    def set_extra_state(self, state: dict) -> None:
        import skops.io

        data = state["pipeline"].numpy().tobytes()
        self.pipeline = skops.io.loads(data, trusted=_TRUSTED) if data else None
        self.single_label = bool(state["single_label"])
        self.output_activation = "softmax" if self.single_label else "sigmoid"


for _name in ESTIMATORS:
    register_model(_name)(partial(ClassicalModel, estimator=_name))
