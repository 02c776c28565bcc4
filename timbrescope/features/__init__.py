"""Features: the log-mel spectrogram (numpy; ``frontend.LogMel`` wraps it as a model layer) and the
classic librosa features of the baselines. Importing this package does not import PyTorch."""

from timbrescope.features.logmel import FrontendConfig, log_mel, mel_filterbank

__all__ = ["FrontendConfig", "log_mel", "mel_filterbank"]
