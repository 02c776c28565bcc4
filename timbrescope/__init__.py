"""timbrescope: which instruments are playing in this recording, and when?

Layers (data flows one way):

- ``timbrescope.errors``     the exception family (TimbrescopeError > ParameterError, AudioError, DataError, ModelError)
- ``timbrescope.taxonomy``   labels, families, General-MIDI and dataset label maps (versioned)
- ``timbrescope.audio``      info / load / stream / resample for any supported audio file
- ``timbrescope.features``   the log-mel spectrogram (numpy; a model layer in ``features.frontend``)
- ``timbrescope.synth``      the rendered training corpus (banks, material, rendering, effects)
- ``timbrescope.data``       rendered corpora and manifests as examples with targets
- ``timbrescope.models``     model registry (``create_model``, ``list_models``) and networks
- ``timbrescope.train``      training loop and checkpoints
- ``timbrescope.evaluate``   metrics and evaluations
- ``timbrescope.inference``  ``Recognizer`` and ``identify``: clip scores, frame scores, segments (ONNX Runtime or PyTorch)
- ``timbrescope.cli``        the ``timbrescope`` command (a thin wrapper)
"""

__version__ = "0.14.0"

__all__ = ["Recognizer", "identify", "__version__"]


def __getattr__(name: str):
    """``timbrescope.Recognizer`` and ``timbrescope.identify`` without importing torch at package import."""
    if name in ("Recognizer", "identify"):
        from timbrescope import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'timbrescope' has no attribute {name!r}")
