"""Classic hand-made features with librosa, for the baselines of the literature: MFCC summaries (one vector
per clip) and frame sequences of MFCC, spectral centroid and spectral contrast. Pure numpy functions;
``SummaryFrontend``/``SequenceFrontend`` wrap them as model layers (no gradient flows through them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

N_MFCC = 40
SUMMARY_DIM = 3 * N_MFCC  # 120, as the UIowa MIS feature set
N_SEQUENCE_MFCC = 20
N_CONTRAST_BANDS = 6
SEQUENCE_DIM = N_SEQUENCE_MFCC + 1 + N_CONTRAST_BANDS + 1


@dataclass(frozen=True)
class ClassicConfig:
    """STFT settings of the classic features (hop 512 at 22,050 Hz = 23 ms)."""

    sample_rate: int = 22_050
    n_fft: int = 2048
    hop_length: int = 512

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def hop_seconds(self) -> float:
        return self.hop_length / self.sample_rate


def mfcc_summary(y: np.ndarray, config: ClassicConfig = ClassicConfig()) -> np.ndarray:
    """float32 ``[120]``: mean and standard deviation over time of 40 MFCCs, and the mean absolute delta."""
    import librosa

    mfcc = librosa.feature.mfcc(y=y, sr=config.sample_rate, n_mfcc=N_MFCC, n_fft=config.n_fft,
                                hop_length=config.hop_length)
    delta = np.diff(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1), np.abs(delta).mean(axis=1)]).astype(np.float32)


def frame_features(y: np.ndarray, config: ClassicConfig = ClassicConfig()) -> np.ndarray:
    """float32 ``[28, frames]``: 20 MFCCs, the spectral centroid (kHz) and 7 spectral-contrast bands (dB)."""
    import librosa

    spectrum = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length))
    mel = librosa.feature.melspectrogram(S=spectrum**2, sr=config.sample_rate)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_SEQUENCE_MFCC)
    centroid = librosa.feature.spectral_centroid(S=spectrum, sr=config.sample_rate) / 1000.0
    contrast = librosa.feature.spectral_contrast(S=spectrum, sr=config.sample_rate, n_bands=N_CONTRAST_BANDS)
    return np.concatenate([mfcc, centroid, contrast]).astype(np.float32)


class _NumpyFrontend(nn.Module):
    """Applies a numpy feature function to each waveform of a batch; ``config`` gives the sample rate."""

    def __init__(self, config: ClassicConfig, function):
        super().__init__()
        self.config = config
        self.function = function

    @torch.no_grad()
    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        rows = [self.function(y, self.config) for y in waveform.detach().cpu().numpy().astype(np.float32)]
        return torch.from_numpy(np.stack(rows))


class SummaryFrontend(_NumpyFrontend):
    """waveform ``[batch, samples]`` -> MFCC summaries ``[batch, 120]``."""

    def __init__(self, config: ClassicConfig):
        super().__init__(config, mfcc_summary)


class SequenceFrontend(_NumpyFrontend):
    """waveform ``[batch, samples]`` -> frame features ``[batch, 28, frames]``."""

    def __init__(self, config: ClassicConfig):
        super().__init__(config, frame_features)
