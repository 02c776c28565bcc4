"""Training under ``torchrun``: one process per rank, DistributedDataParallel, gloo on CPUs, NCCL on GPUs.

``join()`` reads torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); without it (one
process, on the GPU when there is one) every other helper here is the identity, so ``train`` runs as
before. Under torchrun every rank computes the features, rank 0 draws each epoch's order and every rank
trains on its share of it (``shard``); rank 0 alone validates, decides when to stop (``agree``), and
writes logs, resume states and the checkpoint.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world`` training processes, and the device it trains on."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """Whether this process validates and writes files (rank 0)."""
        return self.rank == 0


def join() -> Ranks:
    """Join torchrun's process group (NCCL and this rank's GPU when CUDA is there, else gloo on the CPU); one
    process alone trains on the GPU when there is one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world == 1:
        return Ranks(device="cuda" if cuda else "cpu")
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), device)


def leave(ranks: Ranks) -> None:
    """Wait for every rank, then leave the process group. The DDP wrapper and gloo's finished work are
    collected first: left to the interpreter's exit, a rank once aborted there ("terminate called without
    an active exception", session 22's CI)."""
    if ranks.world > 1:
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


class FeatureForward(nn.Module):
    """A model whose ``forward`` is its ``forward_features``: what DistributedDataParallel wraps, so that
    training steps go through DDP's forward (which prepares the gradient all-reduce)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> dict:
        return self.model.forward_features(inputs)


def wrap(model: nn.Module, ranks: Ranks):
    """The callable a training step runs: ``model.forward_features``, or DDP around it under torchrun."""
    if ranks.world == 1:
        return model.forward_features
    from torch.nn.parallel import DistributedDataParallel

    # a composer head's parameters get no gradient in batches without composer targets
    return DistributedDataParallel(FeatureForward(model), device_ids=[ranks.device] if ranks.device != "cpu" else None,
                                   find_unused_parameters=bool(getattr(model, "composers", None)))


def shard(order: np.ndarray, ranks: Ranks) -> np.ndarray:
    """This rank's share of rank 0's epoch ``order`` (every rank gets as many draws: the order is
    repeated from its start to a multiple of the ranks, as DistributedSampler does)."""
    if ranks.world == 1:
        return order
    shared = torch.from_numpy(np.asarray(order, np.int64))
    dist.broadcast(shared, 0)
    padded = np.resize(shared.numpy(), -(-len(order) // ranks.world) * ranks.world)
    return padded[ranks.rank::ranks.world]


def agree(value: bool, ranks: Ranks) -> bool:
    """Rank 0's ``value`` on every rank."""
    if ranks.world == 1:
        return value
    flag = torch.tensor([int(value)])
    dist.broadcast(flag, 0)
    return bool(flag.item())


def gather(value, ranks: Ranks) -> list:
    """Every rank's ``value`` (a picklable object), in rank order."""
    if ranks.world == 1:
        return [value]
    values = [None] * ranks.world
    dist.all_gather_object(values, value)
    return values
