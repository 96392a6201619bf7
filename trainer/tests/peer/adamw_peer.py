"""Peer of trainer/src/train/adamw.rs: torch.optim.AdamW on the same tiny network.

    adamw_peer.py DIR     reads DIR/init.safetensors (weights and batches), writes DIR/peer.safetensors

Groups as the reference builds them (FusionProt util.py: the ESM group at lr x ratio, the rest at lr,
FusionProt's own parameters - here `structure_token` - in no group), betas 0.9/0.98, wd 0.01, eps 1e-8.
Three steps: one batch; two micro-batches accumulated (each loss / 2); the ESM group's lr changed.
`lm_head.weight` never gets a gradient, so AdamW must leave it alone.
"""

import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

LR, RATIO = 1e-3, 0.1
NAMES = ["sequence_model.w1", "sequence_model.b1", "structure_model.w2", "mlp.w3", "lm_head.weight",
         "structure_token"]


def loss(p, x, y):
    h = torch.relu(x @ p["sequence_model.w1"] + p["sequence_model.b1"])
    z = torch.relu(h @ p["structure_model.w2"] + p["structure_token"])
    return F.binary_cross_entropy_with_logits(z @ p["mlp.w3"], y)


def main():
    d = sys.argv[1]
    t = load_file(f"{d}/init.safetensors")
    p = {n: t[n].clone().requires_grad_(True) for n in NAMES}
    opt = torch.optim.AdamW([
        {"params": [p["sequence_model.w1"], p["sequence_model.b1"]], "lr": LR * RATIO},
        {"params": [p["structure_model.w2"], p["mlp.w3"], p["lm_head.weight"]], "lr": LR},
    ], lr=LR, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)
    loss(p, t["x0"], t["y0"]).backward()
    opt.step()
    opt.zero_grad()
    for k in ("x1", "x2"):
        (loss(p, t[k], t["y" + k[1]]) / 2).backward()
    opt.step()
    opt.zero_grad()
    opt.param_groups[0]["lr"] = LR * RATIO * 0.6
    loss(p, t["x0"], t["y0"]).backward()
    opt.step()
    save_file({n: v.detach().contiguous() for n, v in p.items()}, f"{d}/peer.safetensors")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
