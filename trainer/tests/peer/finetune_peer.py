"""Peer of one fine-tuning step (the reference's EC / GO recipe, training.md §3.1-3.2): FusionProt
from fusion_peer.py with TorchDrug's MultipleBinaryClassification head (3-layer MLP on the graph
feature), BCE-with-logits over every entry, torch.optim.AdamW with the reference's groups
(FusionProt util.py: sequence_model at lr x 0.08; structure_model and mlp at lr; FusionProt's own
parameters in no group, quirk §6.1), betas 0.9/0.98, wd 0.01.

    finetune_peer.py FULL HALF1 HALF2 OUT_DIR

FULL/HALF* are batch files (fusion_peer.py's format plus `targets` [B, T]); HALF1 and HALF2 split FULL
into two micro-batches. Writes OUT_DIR/model.pth (the model), OUT_DIR/head.safetensors (the head's
initial weights) and OUT_DIR/step.safetensors: `a.loss`, `a.grad.<name>`, `a.<name>` (every parameter
and BatchNorm buffer after one step on FULL), and `b.<name>` after one step accumulated over HALF1 and
HALF2 (each loss / 2), as TorchDrug's engine accumulates.
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
from fusion_peer import Fusion, perturb  # noqa: E402

LR, RATIO = 1e-2, 0.08


class Task(nn.Module):
    def __init__(self, model, dim, tasks):
        super().__init__()
        self.model = model
        self.mlp = nn.Module()
        self.mlp.layers = nn.ModuleList([nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, tasks)])

    def forward(self, b):
        h, _ = self.model(b)
        for k, layer in enumerate(self.mlp.layers):
            h = layer(h)
            if k < 2:
                h = torch.relu(h)
        return h


def named(task):
    """state_dict names as our var store has them: the model's at the root, the head's under mlp."""
    out = OrderedDict()
    for k, v in task.state_dict().items():
        out[k[len("model."):] if k.startswith("model.") else k] = v
    return out


def optimizer(task):
    seq = [p for n, p in task.model.named_parameters() if n.startswith("sequence_model.")]
    rest = [p for n, p in task.model.named_parameters() if n.startswith("structure_model.")] + list(task.mlp.parameters())
    return torch.optim.AdamW([{"params": seq, "lr": LR * RATIO}, {"params": rest, "lr": LR}],
                             lr=LR, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)


def main():
    full, half1, half2 = (load_file(p) for p in sys.argv[1:4])
    out = sys.argv[4]
    torch.manual_seed(5)
    model = Fusion()
    perturb(model, full)
    torch.save(OrderedDict(model.state_dict()), f"{out}/model.pth")
    torch.manual_seed(7)
    task = Task(model, 32 + 6 * 16, full["targets"].shape[1])
    save_file({k: v.contiguous() for k, v in named(task).items() if k.startswith("mlp.")}, f"{out}/head.safetensors")
    result = {}

    a = copy.deepcopy(task)
    a.train()
    opt = optimizer(a)
    loss = F.binary_cross_entropy_with_logits(a(full), full["targets"])
    loss.backward()
    result["a.loss"] = loss.detach().reshape(1)
    for n, p in a.named_parameters():
        if p.grad is not None:
            result["a.grad." + (n[len("model."):] if n.startswith("model.") else n)] = p.grad.clone()
    opt.step()
    for k, v in named(a).items():
        result["a." + k] = v.clone()

    b = copy.deepcopy(task)
    b.train()
    opt = optimizer(b)
    for half in (half1, half2):
        (F.binary_cross_entropy_with_logits(b(half), half["targets"]) / 2).backward()
    opt.step()
    for k, v in named(b).items():
        result["b." + k] = v.clone()
    save_file({k: v.contiguous() for k, v in result.items()}, f"{out}/step.safetensors")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
