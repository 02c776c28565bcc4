"""Run by tests/train/test_distributed.py under `torchrun --nproc-per-node 2`: checks what each rank sees."""

import json
import sys

import numpy as np
import torch

from timbrescope.models import create_model
from timbrescope.train import distributed

ranks = distributed.join()
torch.manual_seed(0)
model = create_model("timbrenet", labels=["cello", "piano", "violin"])
forward = distributed.wrap(model, ranks)
optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
order = distributed.shard(np.random.default_rng(ranks.rank).permutation(9), ranks)  # rank 0's order wins
torch.manual_seed(1 + ranks.rank)  # every rank its own batch
inputs = torch.randn(2, model.frontend.config.n_mels, 64)
loss = forward(inputs)["clip_logits"].sum()
optimiser.zero_grad()
loss.backward()
optimiser.step()
weights = float(sum(p.detach().double().sum() for p in model.parameters()))
seen = distributed.gather({"order": order.tolist(), "weights": weights, "agree": distributed.agree(ranks.rank == 0, ranks)},
                          ranks)
if ranks.main:
    json.dump({"world": ranks.world, "device": ranks.device, "ranks": seen}, open(sys.argv[1], "w"))
distributed.leave(ranks)
