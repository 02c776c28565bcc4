"""Model registry: ``@register_model``, ``create_model(name, **config)``, ``list_models()``.

Every registered network takes a waveform ``[batch, samples]`` and returns a dict with
``frame_logits [batch, frames, labels]``, ``clip_logits [batch, labels]`` and ``embedding [batch, dim]``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from timbrescope.errors import ModelError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Class or factory decorator that makes ``create_model(name, ...)`` build it."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ModelError(f"model {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return add


def list_models() -> list[str]:
    """Names of the registered models a recipe can train, sorted (not those assembled from trained ones)."""
    _load_builtin_models()
    return sorted(name for name in _REGISTRY if not model_class(name).assembled)


def create_model(name: str, **config) -> nn.Module:
    """Build the registered model ``name`` with ``config`` (labels, frontend settings, sizes)."""
    _load_builtin_models()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    try:
        return _REGISTRY[name](**config)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"bad configuration for model {name!r}: {exc}") from None


def accepts_features(name: str) -> bool:
    """Whether model ``name`` can be fitted on a dataset's precomputed feature vectors."""
    return bool(model_class(name).accepts_features)


def training_defaults(name: str) -> dict:
    """Training settings of model ``name``'s recipe (a reference system's batch size and learning rate,
    timbrenet's share of single-instrument clips)."""
    return dict(model_class(name).training_defaults)


def model_class(name: str):
    """The class registered as ``name`` (behind a ``functools.partial`` factory, its class)."""
    _load_builtin_models()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    factory = _REGISTRY[name]
    return getattr(factory, "func", factory)


def _load_builtin_models() -> None:
    """Import the modules that register the built-in models (once; explicit, no star-imports)."""
    from timbrescope.models import baselines, classical, ensemble, timbrenet  # noqa: F401
