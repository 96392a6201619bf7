"""bench/train's PyTorch side: FusionProt fine-tuning steps on an imported EC dataset, with the
test peers' network (trainer/tests/peer/fusion_peer.py: fair-esm's ESM2 fused with a GearNet
written in TorchDrug's style) and task and optimizer (finetune_peer.py: 3-layer MLP head,
BCE-with-logits, torch.optim.AdamW with the reference's parameter groups), random init.

    train_bench.py info DATASET MAX_RESIDUES
        JSON: the train part of split "official" (proteins, mean length after truncation)
    train_bench.py time DATASET SIZE MAX_RESIDUES STEPS THREADS [cpu|cuda]
        times STEPS optimizer steps of one micro-batch of 2 (gradient_interval 1); prints one JSON
        line: seconds (mean per step without the first), seconds_all (with it), first, steps,
        mean_length (of the proteins in the averaged steps), peak_rss_mib, threads, device

Proteins are those `fusionprot train` trains on (split "official", part "train", sorted by
protein id) in its order: epoch e walks torch.randperm(n) from a generator seeded with e (the
reference's DistributedSampler, trainer/src/train/sampler.rs), micro-batches of 2, the last one of
an epoch smaller when n is odd. So with STEPS a whole number of epochs, both sides train on the
same batches. Each protein is truncated to its first MAX_RESIDUES residues and the edges among
them, as `fusionprot train` does. Building a step's batch tensors is timed, as it is in ours.
"""

import json
import os
import resource
import sys
import time

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "trainer", "tests", "peer"))
import finetune_peer  # noqa: E402
import fusion_peer  # noqa: E402

# ESM-2 sizes (layers, width, heads) and the fusion schedule that uses each GearNet layer once:
# 12 and 30 ESM layers admit no schedule `l % k == 0` with 6 injections, so GearNet has 5 layers
# of 512 here (as in bench/embed), every 2nd / 5th ESM layer.
SIZES = {"35M": (12, 480, 20, 2), "150M": (30, 640, 20, 5)}
GEARNET = [512] * 5
STANDARD = ["GLY", "ALA", "SER", "PRO", "VAL", "THR", "CYS", "ILE", "LEU", "ASN", "ASP", "GLN", "LYS",
            "GLU", "MET", "HIS", "PHE", "ARG", "TYR", "TRP"]
ONEHOT = {name: i for i, name in enumerate(STANDARD)}  # anything else: bit 20 (pipeline::residue)
LR = 2e-5  # the reference's; the value does not change the work per step


def train_part(dataset):
    """(protein ids sorted, label count, {protein id: label indices}) of task ec, split official."""
    splits = pads.dataset(f"{dataset}/splits").to_table(
        columns=["protein_id", "split"],
        filter=(pc.field("name") == "official") & (pc.field("split") == "train"))
    ids = sorted(splits["protein_id"].to_pylist())
    with open(f"{dataset}/manifest.json") as f:
        tasks = json.load(f)["benchmark"]["tasks"]
    labels = next(t["size"] for t in tasks if t["task"] == "ec")
    rows = pads.dataset(f"{dataset}/labels").to_table(
        filter=(pc.field("task") == "ec") & pc.field("protein_id").isin(ids)).to_pylist()
    return ids, labels, {r["protein_id"]: r["label_index"] for r in rows}


def read_graphs(dataset, ids, max_residues):
    """{protein id: (residue_type, onehot, src, dst, rel)} as int64 numpy arrays, truncated."""
    keep = pc.field("protein_id").isin(ids)
    res = pads.dataset(f"{dataset}/residues").to_table(
        columns=["protein_id", "residue_index", "residue_name", "residue_type"], filter=keep)
    edges = pads.dataset(f"{dataset}/edges").to_table(columns=["protein_id", "src", "dst", "relation"], filter=keep)
    graphs = {}
    res_pid = res["protein_id"].to_numpy(zero_copy_only=False)
    edge_pid = edges["protein_id"].to_numpy(zero_copy_only=False)
    index = res["residue_index"].to_numpy()
    rtype = res["residue_type"].to_numpy().astype(np.int64)
    names = res["residue_name"].to_pylist()
    src, dst, rel = (edges[c].to_numpy().astype(np.int64) for c in ("src", "dst", "relation"))
    for pid in ids:
        rows = np.flatnonzero(res_pid == pid)
        rows = rows[np.argsort(index[rows], kind="stable")][:max_residues]
        e = np.flatnonzero(edge_pid == pid)
        e = e[(src[e] < max_residues) & (dst[e] < max_residues)]
        onehot = np.array([ONEHOT.get(names[i], 20) for i in rows], dtype=np.int64)
        graphs[pid] = (rtype[rows], onehot, src[e], dst[e], rel[e])
    return graphs


def order(n, steps):
    """Micro-batches of 2 (indices into the sorted train ids) for `steps` steps, ours' order."""
    batches, epoch = [], 0
    while len(batches) < steps:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).tolist()
        batches += [perm[i:i + 2] for i in range(0, n, 2)]
        epoch += 1
    return batches[:steps]


def make_batch(graphs, labels, width):
    """fusion_peer's batch format (global node ids) plus `targets` [B, labels]; default device."""
    lengths, offset = [], 0
    parts = {k: [] for k in ("residue_type", "onehot", "src", "dst", "rel")}
    for rtype, onehot, src, dst, rel in graphs:
        parts["residue_type"].append(rtype)
        parts["onehot"].append(onehot)
        parts["src"].append(src + offset)
        parts["dst"].append(dst + offset)
        parts["rel"].append(rel)
        lengths.append(len(rtype))
        offset += len(rtype)
    b = {k: torch.as_tensor(np.concatenate(v)).to(torch.get_default_device()) for k, v in parts.items()}
    b["lengths"] = torch.tensor(lengths)
    targets = torch.zeros(len(graphs), width)
    for i, label in enumerate(labels):
        targets[i, label] = 1.0
    b["targets"] = targets
    return b


def main():
    cmd, dataset = sys.argv[1], sys.argv[2]
    if cmd == "info":
        max_residues = int(sys.argv[3])
        ids, _, _ = train_part(dataset)
        graphs = read_graphs(dataset, ids, max_residues)
        print(json.dumps({"proteins": len(ids), "mean_length": sum(len(g[0]) for g in graphs.values()) / len(ids)}))
        return
    size, max_residues, steps, threads = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    device = sys.argv[7] if len(sys.argv) > 7 else "cpu"
    torch.set_num_threads(threads)
    ids, width, label_of = train_part(dataset)
    graphs = read_graphs(dataset, ids, max_residues)
    batches = order(len(ids), steps)

    layers, dim, heads, every = SIZES[size]
    fusion_peer.LAYERS, fusion_peer.DIM, fusion_peer.HEADS = layers, dim, heads
    fusion_peer.HIDDEN, fusion_peer.INJECT_EVERY = GEARNET, every
    finetune_peer.LR = LR
    if device != "cpu":
        # fusion_peer makes its index tensors without a device: the default device puts them on the
        # GPU (a torch function mode, so not set on the CPU, where it would only add overhead).
        torch.set_default_device(device)
    torch.manual_seed(0)
    task = finetune_peer.Task(fusion_peer.Fusion(), dim + sum(GEARNET), width)
    task.train()
    opt = finetune_peer.optimizer(task)

    times, lengths = [], []
    for step, batch in enumerate(batches):
        sync(device)
        t = time.perf_counter()
        b = make_batch([graphs[ids[i]] for i in batch], [label_of.get(ids[i], []) for i in batch], width)
        loss = F.binary_cross_entropy_with_logits(task(b), b["targets"])
        loss.backward()
        opt.step()
        opt.zero_grad()
        loss.item()
        sync(device)
        times.append(time.perf_counter() - t)
        if step:
            lengths += [len(graphs[ids[i]][0]) for i in batch]
    out = {
        "seconds": sum(times[1:]) / max(len(times) - 1, 1),
        "seconds_all": sum(times) / len(times),
        "first": times[0],
        "steps": len(times),
        "mean_length": sum(lengths) / max(len(lengths), 1),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "device": device,
        "parameters": sum(p.numel() for p in task.parameters()),
    }
    if device.startswith("cuda"):
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["cuda_max_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    print(json.dumps(out))


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
