"""Peer of trainer/src/train/{plateau,sampler}.rs: what PyTorch itself gives.

    schedule_peer.py OUT.json

- `randperm`: torch.randperm(n, generator=torch.Generator().manual_seed(seed)) for several n, seeds;
- `sampler`: DistributedSampler(range(n), num_replicas, rank) (shuffle, seed 0) after set_epoch(e);
- `plateau`: the learning rates of two groups after each ReduceLROnPlateau step (factor 0.6,
  patience 5, mode min and max) over a rising-then-noisy metric.
"""

import json
import sys

import torch
from torch.utils.data.distributed import DistributedSampler


def main():
    out = {"randperm": [], "sampler": [], "plateau": {}}
    for n in (1, 2, 7, 100, 1000, 15011):
        for seed in (0, 1, 42):
            g = torch.Generator().manual_seed(seed)
            out["randperm"].append({"n": n, "seed": seed, "perm": torch.randperm(n, generator=g).tolist()})
    for n, replicas in ((10, 4), (17, 4), (5, 1)):
        for epoch in (0, 1, 7):
            for rank in range(replicas):
                s = DistributedSampler(list(range(n)), num_replicas=replicas, rank=rank)
                s.set_epoch(epoch)
                out["sampler"].append({"n": n, "replicas": replicas, "epoch": epoch, "rank": rank, "order": list(s)})
    metrics = [0.30 + 0.01 * e for e in range(20)] + [0.5, 0.49, 0.51, 0.5, 0.48, 0.47, 0.52, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    for mode in ("min", "max"):
        w = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([{"params": [w], "lr": 2e-5 * 0.08}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 2e-5}])
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.6, patience=5)
        lrs = []
        for m in metrics:
            sched.step(m)
            lrs.append([float(g["lr"]) for g in opt.param_groups])
        out["plateau"][mode] = {"metrics": metrics, "lrs": lrs}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
