"""Peer of one Multiview Contrast step (FusionProt's pre-training: spec §4, training.md §3.3, §7.6-7.8):
FusionProt from fusion_peer.py, two views cut as TorchDrug cuts them (SubsequenceNode keeps the residues of
the window and the edges among them, in order, renumbered; RandomEdgeMask removes edge positions of the
cropped graph), each its own forward pass in train mode, TorchDrug's MLP projection (two layers, ReLU
between) shared by both, InfoNCE on F.cosine_similarity / tau, ESM frozen (requires_grad False: no gradient
to its weights, not in the optimizer) and torch.optim.Adam over every other parameter, the fusion
parameters included (build_pretrain_solver).

    mc_peer.py BATCH VIEWS OUT_DIR

BATCH is a batch file (fusion_peer.py's format); VIEWS holds per view v in {1, 2}: `v.start` [B], `v.len`
[B], `v.masked` (positions, concatenated) and `v.count` [B] (how many per protein). Writes OUT_DIR/model.pth
(the model), OUT_DIR/head.safetensors (the projection's initial weights) and OUT_DIR/step.safetensors:
`loss`, `x`, `y` (the projections), the finished view graphs `view<v>.{residue_type, onehot, lengths, src,
dst, rel}` as this peer cut them, `grad.<name>` for every parameter with a gradient, and `<name>` for every
parameter and buffer after the step (the model's at the root, the projection under mlp.).
"""

import copy
import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fusion_peer import DIM, HIDDEN, Fusion, perturb  # noqa: E402

LR, TAU = 1e-2, 0.07
OUT_DIM = DIM + len(HIDDEN) * HIDDEN[-1]


class Contrast(nn.Module):
    """TorchDrug's MultiviewContrast around the model: `model` and `mlp` (layers.MLP(d, [d, d]))."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.mlp = nn.Module()
        self.mlp.layers = nn.ModuleList([nn.Linear(OUT_DIM, OUT_DIM), nn.Linear(OUT_DIM, OUT_DIM)])

    def project(self, h):
        return self.mlp.layers[1](torch.relu(self.mlp.layers[0](h)))


def view(b, spec, v):
    """The view of every protein of batch b: crop, then masked edge positions removed."""
    lengths = b["lengths"].tolist()
    starts, lens, counts = spec[f"{v}.start"].tolist(), spec[f"{v}.len"].tolist(), spec[f"{v}.count"].tolist()
    masked = spec[f"{v}.masked"].tolist()
    res, onehot, src, dst, rel, out_lengths = [], [], [], [], [], []
    offset, new_offset, m = 0, 0, 0
    edges = list(zip(b["src"].tolist(), b["dst"].tolist(), b["rel"].tolist()))
    for i, n in enumerate(lengths):
        s, l = starts[i], lens[i]
        res += b["residue_type"][offset + s:offset + s + l].tolist()
        onehot += b["onehot"][offset + s:offset + s + l].tolist()
        mine = [(a - offset, c - offset, r) for a, c, r in edges if offset <= a < offset + n]
        kept = [(a - s, c - s, r) for a, c, r in mine if s <= a < s + l and s <= c < s + l]
        drop = set(masked[m:m + counts[i]])
        m += counts[i]
        for k, (a, c, r) in enumerate(kept):
            if k not in drop:
                src.append(new_offset + a)
                dst.append(new_offset + c)
                rel.append(r)
        out_lengths.append(l)
        offset += n
        new_offset += l
    t = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return {"residue_type": t(res), "onehot": t(onehot), "lengths": t(out_lengths),
            "src": t(src), "dst": t(dst), "rel": t(rel)}


def named(task):
    out = OrderedDict()
    for k, v in task.state_dict().items():
        out[k[len("model."):] if k.startswith("model.") else k] = v
    return out


def main():
    batch, spec = load_file(sys.argv[1]), load_file(sys.argv[2])
    out = sys.argv[3]
    torch.manual_seed(5)
    model = Fusion()
    perturb(model, batch)
    torch.save(OrderedDict(model.state_dict()), f"{out}/model.pth")
    torch.manual_seed(7)
    task = Contrast(model)
    save_file({k: v.contiguous() for k, v in named(task).items() if k.startswith("mlp.")}, f"{out}/head.safetensors")

    for p in task.model.sequence_model.parameters():
        p.requires_grad = False
    opt = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=LR)
    task.train()
    v1, v2 = view(batch, spec, 1), view(batch, spec, 2)
    x = task.project(task.model(v1)[0])
    y = task.project(task.model(v2)[0])
    score = F.cosine_similarity(x.unsqueeze(1), y.unsqueeze(0), dim=-1) / TAU
    is_positive = torch.diag(torch.ones(len(x), dtype=torch.bool))
    mutual_info = (score[is_positive] - score.logsumexp(dim=-1)).mean()
    loss = -mutual_info
    loss.backward()
    result = {"loss": loss.detach().reshape(1), "x": x.detach(), "y": y.detach()}
    for k, v in (("view1", v1), ("view2", v2)):
        for key, t in v.items():
            result[f"{k}.{key}"] = t
    for n, p in task.named_parameters():
        if p.grad is not None:
            result["grad." + (n[len("model."):] if n.startswith("model.") else n)] = p.grad.clone()
    opt.step()
    for k, v in named(task).items():
        result[k] = v.clone()
    save_file({k: v.contiguous() for k, v in result.items()}, f"{out}/step.safetensors")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
