"""What each training step sees: the batch of features and targets, the order of an epoch's draws
(shares of single-instrument and single-note clips) and random crops of the clips."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from timbrescope.augment import note_onsets


@dataclass
class Batch:
    """Front-end outputs ``[n, ...]`` (float16 when large), clip targets and their mask ``[n, labels]``
    (0: unknown), frame targets ``[n, T', labels]``, whether each clip's frame targets are known ``[n]``,
    the composer index ``[n]`` (-1: unknown) and whether each clip is one rendered single note ``[n]``."""

    inputs: torch.Tensor | None
    clips: torch.Tensor
    mask: torch.Tensor
    frames: torch.Tensor
    frame_known: torch.Tensor
    composers: torch.Tensor
    single_note: torch.Tensor

    def to(self, device: str) -> Batch:
        """The batch on ``device`` (itself when it is there)."""
        return Batch(*(None if t is None else t.to(device) for t in self._tensors()))

    def take(self, index) -> Batch:
        return Batch(*(None if t is None else t[index] for t in self._tensors()))

    def _tensors(self) -> list[torch.Tensor | None]:
        return [getattr(self, f.name) for f in fields(self)]


def random_crop(batch: Batch, length: int, time_pool: int, rng: np.random.Generator) -> Batch:
    """Each clip's log-mel ``[n, mels, frames]`` cut to a random stretch of ``length`` frames (rounded down
    to a multiple of ``time_pool``, the input frames per output frame, and starting on one, so the frame
    targets ``[n, frames / time_pool, labels]`` are cut to the same stretch); where frame targets are
    known, a clip's targets become the labels sounding in its stretch. Cheaper steps, and more positions.
    A single-note clip's stretch always holds the note's onset (its first sounding frame): the attack
    is what tells most instruments apart, and a real note recording starts with it."""
    frames = batch.inputs.shape[2]
    length -= length % time_pool
    if length <= 0 or length >= frames:
        return batch
    last = (frames - length) // time_pool  # the latest start, in output frames
    starts = rng.integers(0, last + 1, len(batch.inputs))
    onsets, anchored = note_onsets(batch)
    onsets, anchored = np.minimum(onsets.numpy(), last), anchored.numpy()
    note_starts = (rng.random(len(starts)) * (onsets + 1)).astype(int)
    starts = np.where(anchored, note_starts, starts)
    inputs = torch.stack([x[:, s * time_pool:s * time_pool + length] for x, s in zip(batch.inputs, starts)])
    cut = torch.stack([f[s:s + length // time_pool] for f, s in zip(batch.frames, starts)])
    clips = torch.where(batch.frame_known[:, None], cut.amax(dim=1), batch.clips)
    return replace(batch, inputs=inputs, frames=cut, clips=clips)


def epoch_order(clips: torch.Tensor, solo_share: float | None, rng: np.random.Generator,
                single_note: np.ndarray | None = None, note_share: float | None = None) -> np.ndarray:
    """The clip indices of one epoch (as many as there are clips ``[n, labels]``): a permutation, or,
    with ``solo_share``, drawn with replacement so that that share of draws are clips of exactly one
    instrument (single notes and solo lines; the rest multi-instrument clips) whatever their share in
    the data; with ``note_share`` too, that share of all draws are single-note clips (``single_note
    [n]``) and the rest of the solo share other single-instrument clips."""
    n = len(clips)
    solo = (clips > 0.5).sum(dim=1).numpy() == 1
    if solo_share is None or solo.all() or not solo.any():
        return rng.permutation(n)
    groups = [(solo, solo_share), (~solo, 1 - solo_share)]
    if note_share is not None and single_note is not None:
        notes = solo & single_note
        if notes.any() and (solo & ~notes).any():
            groups = [(notes, note_share), (solo & ~notes, solo_share - note_share), (~solo, 1 - solo_share)]
    weights = np.zeros(n)
    for members, share in groups:
        weights[members] = share / members.sum()
    return rng.choice(n, size=n, replace=True, p=weights / weights.sum())
