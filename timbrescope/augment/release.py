"""Early releases: short notes made from the long single notes of a corpus, on log-mel features."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SILENCE = math.log(1e-6)  # the front-end's floor: what a recording shorter than a window is padded with


def note_onsets(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Each clip's first sounding output frame ``[n]`` (0 where nothing sounds) and whether it is a single note
    whose onset that is ``[n]``: a single-note clip with known frame targets that sound somewhere."""
    sounding = batch.frames.amax(dim=2) > 0.5  # [n, output frames]
    return sounding.int().argmax(dim=1), batch.single_note.bool() & batch.frame_known & sounding.any(dim=1)


@dataclass(frozen=True)
class ReleaseDraw:
    """Which clips ``[n]`` are released, ``cut`` seconds after the note's onset ``[n]``, fading with time
    constant ``tau`` seconds ``[n]`` (amplitude), into ``silence`` ``[n]`` (else the clip's own quietest level)."""

    released: torch.Tensor
    cut: torch.Tensor
    tau: torch.Tensor
    silence: torch.Tensor


@dataclass(frozen=True)
class Release:
    """With ``probability`` per single-note clip, the note is let go 0.1-1.5 s after its onset: from there
    its log-mel power ``[n, mels, frames]`` falls exponentially (time constant 20-150 ms) to the clip's
    quietest level per band, or, for a third of them, to silence; its frame targets ``[n, frames / time_pool,
    labels]`` end where it has fallen by 26 dB (three time constants). Rendered notes sound 1.2 s or more,
    so without this the only short sounds a network hears are drum hits (and it calls a staccato note or
    a shout a drum). ``hop_seconds``: seconds between input frames; ``time_pool``: input frames per
    output frame."""

    probability: float
    hop_seconds: float
    time_pool: int

    def draw(self, rng: np.random.Generator, size: int) -> ReleaseDraw:
        return ReleaseDraw(torch.from_numpy(rng.random(size) < self.probability),
                           torch.from_numpy(rng.uniform(0.1, 1.5, size).astype(np.float32)),
                           torch.from_numpy(rng.uniform(0.02, 0.15, size).astype(np.float32)),
                           torch.from_numpy(rng.random(size) < 1 / 3))

    def apply(self, batch, draw: ReleaseDraw) -> dict[str, torch.Tensor]:
        """The batch's new ``inputs, frames``: only single-note clips whose frame targets are known change."""
        inputs, frames = batch.inputs, batch.frames
        onset, notes = note_onsets(batch)
        chosen = draw.released & notes
        if not chosen.any():
            return {}
        onset = onset * self.time_pool  # input frame of each note's onset
        cut = onset + (draw.cut / self.hop_seconds).round().long()
        t = torch.arange(inputs.shape[2])
        after = (t[None, :] - cut[:, None]).clamp(min=0) * self.hop_seconds  # [n, frames] seconds past the cut
        gain = -2 * after / draw.tau[:, None]  # natural-log power
        floor = torch.where(draw.silence[:, None], torch.full_like(inputs[:, :, 0], SILENCE), inputs.amin(dim=2))
        faded = torch.where(after[:, None, :] > 0, torch.logaddexp(inputs + gain[:, None, :], floor[:, :, None]), inputs)
        end = ((cut.float() + 3 * draw.tau / self.hop_seconds) / self.time_pool).ceil().long()  # output frame
        ended = torch.arange(frames.shape[1])[None, :] >= end[:, None]
        return {"inputs": torch.where(chosen[:, None, None], faded, inputs),
                "frames": torch.where((chosen[:, None] & ended)[:, :, None], torch.zeros_like(frames), frames)}
