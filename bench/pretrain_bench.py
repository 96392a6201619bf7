"""bench/pretrain's PyTorch side: Multiview Contrast optimizer steps with the test peers' network
(trainer/tests/peer/fusion_peer.py: fair-esm's ESM2 fused with a GearNet in TorchDrug's style), the
projection MLP and InfoNCE of mc_peer.py, ESM-2 frozen (requires_grad False) and torch.optim.Adam over
everything else at lr 2e-4, random init, on the very micro-batches and views ours trained on
(trainer/examples/mc_step writes them).

    pretrain_bench.py DATASET SIZE STEPS THREADS DEVICE VIEWS

Prints one JSON line: seconds (mean per step without the first), seconds_all, first, steps,
trainable_parameters, peak_rss_mib, device (and the CUDA allocator's peaks on a GPU).

Each step cuts its two views from the packed batch with tensor operations, as TorchDrug's
SubsequenceNode and RandomEdgeMask do on a PackedProtein (nodes of the window kept, the edges among
them in stored order, renumbered; then the masked edge positions removed), builds the batch
tensors, runs one forward pass per view in train mode, the shared projection, InfoNCE on cosine
similarity / 0.07, backward and the Adam step; all of it is timed, as ours' Trainer::step is.
"""

import json
import os
import resource
import sys
import time

import numpy as np
import pyarrow.dataset as pads
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "trainer", "tests", "peer"))
sys.path.insert(0, HERE)
import fusion_peer  # noqa: E402
import mc_peer  # noqa: E402
import train_bench  # noqa: E402

# (ESM layers, width, heads, GearNet hidden dims, fusion every k-th ESM layer)
SIZES = {
    "tiny": (33, 32, 4, [16] * 6, 5),
    "35M": (12, 480, 20, [512] * 5, 2),
    "150M": (30, 640, 20, [512] * 5, 5),
    "650M": (33, 1280, 20, [512] * 6, 5),
}
TAU, LR = 0.07, 2e-4


def cut(b, spec, s, v):
    """View v of step s's packed batch b, with tensor operations on the packed graph."""
    dev = b["src"].device
    lengths = b["lengths"].to(dev)
    start = spec[f"{s}.{v}.start"].to(dev)
    span = spec[f"{s}.{v}.len"].to(dev)
    count = spec[f"{s}.{v}.count"].to(dev)
    masked = spec[f"{s}.{v}.masked"].to(dev)
    node_offset = torch.cumsum(lengths, 0) - lengths
    graph = torch.repeat_interleave(torch.arange(len(lengths), device=dev), lengths)
    local = torch.arange(len(graph), device=dev) - node_offset[graph]
    keep_node = (local >= start[graph]) & (local < start[graph] + span[graph])
    new_id = torch.cumsum(keep_node.long(), 0) - 1
    src, dst, rel = b["src"], b["dst"], b["rel"]
    keep_edge = keep_node[src] & keep_node[dst]
    # Position of each kept edge among its graph's kept edges (stored order), then the masked ones.
    eg = graph[src]
    kept_per_graph = torch.zeros(len(lengths), dtype=torch.long, device=dev).index_add_(0, eg, keep_edge.long())
    first = torch.cumsum(kept_per_graph, 0) - kept_per_graph
    position = torch.cumsum(keep_edge.long(), 0) - 1
    if count.sum() > 0:
        owner = torch.repeat_interleave(torch.arange(len(lengths), device=dev), count)
        drop = torch.zeros(int(keep_edge.sum()), dtype=torch.bool, device=dev)
        drop[first[owner] + masked[: len(owner)]] = True
        keep_edge = keep_edge.clone()
        keep_edge[keep_edge.clone()] = ~drop[position[keep_edge]]
    return {
        "residue_type": b["residue_type"][keep_node],
        "onehot": b["onehot"][keep_node],
        "lengths": span.cpu(),
        "src": new_id[src[keep_edge]],
        "dst": new_id[dst[keep_edge]],
        "rel": rel[keep_edge],
    }


def main():
    dataset, size, steps, threads, device, views = sys.argv[1:7]
    steps, threads = int(steps), int(threads)
    torch.set_num_threads(threads)
    ids = sorted(pads.dataset(f"{dataset}/proteins").to_table(columns=["protein_id"])["protein_id"].to_pylist())
    graphs = train_bench.read_graphs(dataset, ids, 10**9)
    spec = load_file(views)
    layers, dim, heads, hidden, every = SIZES[size]
    fusion_peer.LAYERS, fusion_peer.DIM, fusion_peer.HEADS = layers, dim, heads
    fusion_peer.HIDDEN, fusion_peer.INJECT_EVERY = hidden, every
    if device != "cpu":
        torch.set_default_device(device)
    torch.manual_seed(0)
    model = fusion_peer.Fusion()
    out = dim + sum(hidden)
    mlp = nn.ModuleList([nn.Linear(out, out), nn.Linear(out, out)])
    for p in model.sequence_model.parameters():
        p.requires_grad = False
    params = [p for p in list(model.parameters()) + list(mlp.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=LR)
    model.train()
    # The tensor cut is mc_peer.view's (the parity test's peer, a plain loop) on step 0's batch.
    b = train_bench.make_batch([graphs[p] for p in (ids[i] for i in spec["0.proteins"].tolist())], [], 1)
    b = {k: v.cpu() for k, v in b.items()}
    for v in (0, 1):
        loop = mc_peer.view(b, {f"{v + 1}.{k}": spec[f"0.{v}.{k}"] for k in ("start", "len", "count", "masked")}, v + 1)
        fast = {k: t.cpu() for k, t in cut(b, spec, 0, v).items()}
        assert all(torch.equal(loop[k], fast[k]) for k in loop), f"view {v}: the tensor cut differs from mc_peer.view"
    times = []
    for s in range(steps):
        chosen = [ids[i] for i in spec[f"{s}.proteins"].tolist()]
        train_bench.sync(device)
        t = time.perf_counter()
        b = train_bench.make_batch([graphs[p] for p in chosen], [[] for _ in chosen], 1)
        x, y = (mlp[1](torch.relu(mlp[0](model(cut(b, spec, s, v))[0]))) for v in (0, 1))
        score = F.cosine_similarity(x.unsqueeze(1), y.unsqueeze(0), dim=-1) / TAU
        loss = -(score.diagonal() - score.logsumexp(dim=-1)).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        loss.item()
        train_bench.sync(device)
        times.append(time.perf_counter() - t)
    result = {
        "seconds": sum(times[1:]) / max(len(times) - 1, 1),
        "seconds_all": sum(times) / len(times),
        "first": times[0],
        "steps": len(times),
        "trainable_parameters": sum(p.numel() for p in params),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": device,
    }
    if device.startswith("cuda"):
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["cuda_max_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
