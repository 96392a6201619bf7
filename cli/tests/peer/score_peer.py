"""Peer of `fusionprot score`: writes predictions/v1 tables and the metrics two references give.

    score_peer.py OUT_DIR

`index`: TorchDrug's own formulas (torchdrug/metrics/metric.py @ v0.2.1: area_under_roc,
area_under_prc, f1_max) in float64 torch, with every argsort made stable, so tied scores are taken
in increasing row-major index (`stable=False` is TorchDrug's code as it is: bench/score uses that). `grouped`: sklearn's roc_auc_score / average_precision_score (only
where both classes occur, where sklearn defines them) and Fmax from its definition over distinct
thresholds (numpy). Writes OUT_DIR/<case>.parquet and OUT_DIR/expected.json.
"""

import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from sklearn.metrics import average_precision_score, roc_auc_score


def area_under_roc(pred, target, stable=True):
    order = pred.argsort(descending=True, stable=stable)
    target = target[order]
    hit = target.cumsum(0)
    all = (target == 0).sum() * (target == 1).sum()
    return (hit[target == 0].sum() / (all + 1e-10)).item()


def area_under_prc(pred, target, stable=True):
    order = pred.argsort(descending=True, stable=stable)
    target = target[order]
    precision = target.cumsum(0) / torch.arange(1, len(target) + 1, device=target.device)
    return (precision[target == 1].sum() / ((target == 1).sum() + 1e-10)).item()


def f1_max(pred, target, stable=True):
    order = pred.argsort(descending=True, dim=1, stable=stable)
    target = target.gather(1, order)
    precision = target.cumsum(1) / torch.ones_like(target).cumsum(1)
    recall = target.cumsum(1) / (target.sum(1, keepdim=True) + 1e-10)
    is_start = torch.zeros_like(target).bool()
    is_start[:, 0] = 1
    is_start = torch.scatter(is_start, 1, order, is_start)
    all_order = pred.flatten().argsort(descending=True, stable=stable)
    order = order + torch.arange(order.shape[0]).unsqueeze(1) * order.shape[1]
    order = order.flatten()
    inv_order = torch.zeros_like(order)
    inv_order[order] = torch.arange(order.shape[0])
    is_start = is_start.flatten()[all_order]
    all_order = inv_order[all_order]
    precision = precision.flatten()
    recall = recall.flatten()
    all_precision = precision[all_order] - torch.where(is_start, torch.zeros_like(precision), precision[all_order - 1])
    all_precision = all_precision.cumsum(0) / is_start.cumsum(0)
    all_recall = recall[all_order] - torch.where(is_start, torch.zeros_like(recall), recall[all_order - 1])
    all_recall = all_recall.cumsum(0) / pred.shape[0]
    all_f1 = 2 * all_precision * all_recall / (all_precision + all_recall + 1e-10)
    return all_f1.max().item()


def f1_max_grouped(pred, target):
    """Fmax from its definition: each distinct score is a threshold that tied items cross together."""
    n = pred.shape[0]
    positives = target.sum(1)
    best = 0.0
    for t in np.unique(pred)[::-1]:
        above = pred >= t
        k = above.sum(1)
        tp = (above & (target == 1)).sum(1)
        started = k > 0
        p = (tp[started] / k[started]).mean()
        r = (tp / (positives + 1e-10)).sum() / n
        best = max(best, 2 * p * r / (p + r + 1e-10))
    return float(best)


def write(path, pred, target, tasks=None):
    rows = pred.shape[0]
    meta = {b"fusionprot.schema": b"predictions/v1"}
    if tasks:
        meta[b"fusionprot.tasks"] = json.dumps(tasks).encode()
    lst = pa.list_(pa.field("item", pa.float32(), nullable=False))
    table = pa.table({
        "protein_id": pa.array([f"p{i:04d}" for i in range(rows)]),
        "prediction": pa.array([list(r) for r in pred.astype(np.float32)], type=lst),
        "target": pa.array([list(r) for r in target.astype(np.float32)], type=lst),
    }).replace_schema_metadata(meta)
    pq.write_table(table, path)


def metrics(pred32, target, tasks):
    pred = torch.from_numpy(pred32.astype(np.float64))
    tgt = torch.from_numpy(target.astype(np.float64))
    out = {"index": {
        "f1_max": f1_max(pred, tgt),
        "auprc@micro": area_under_prc(pred.flatten(), tgt.flatten()),
        "auroc@micro": area_under_roc(pred.flatten(), tgt.flatten()),
    }, "grouped": {"f1_max": f1_max_grouped(pred32.astype(np.float64), target)}}
    flat_t, flat_p = target.flatten(), pred32.astype(np.float64).flatten()
    if 0 < flat_t.sum() < flat_t.size:
        out["grouped"]["auprc@micro"] = average_precision_score(flat_t, flat_p)
        out["grouped"]["auroc@micro"] = roc_auc_score(flat_t, flat_p)
    if pred32.shape[1] == 1:
        name = (tasks or ["0"])[0]
        out["index"][f"auroc [{name}]"] = area_under_roc(pred[:, 0], tgt[:, 0])
        out["index"][f"auprc [{name}]"] = area_under_prc(pred[:, 0], tgt[:, 0])
    return out


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(11)
    cases = {}
    pred = rng.normal(size=(60, 25))
    target = (rng.random((60, 25)) < 0.2).astype(np.float64)
    target[:7] = 0  # proteins without any positive (GO's empty branches)
    cases["random"] = (pred, target, None)
    cases["tied"] = (np.round(rng.normal(size=(50, 12)), 1), (rng.random((50, 12)) < 0.3).astype(np.float64), None)
    signed_zero = np.round(rng.normal(size=(30, 6)), 0) * 0.0  # +0.0 and -0.0 tie
    signed_zero[:, :2] = rng.normal(size=(30, 2))
    cases["signed-zero"] = (signed_zero, (rng.random((30, 6)) < 0.4).astype(np.float64), None)
    cases["all-negative"] = (rng.normal(size=(20, 8)), np.zeros((20, 8)), None)
    msp = rng.normal(size=(40, 1))
    cases["msp"] = (msp, (msp[:, :1] + rng.normal(size=(40, 1)) > 0).astype(np.float64), ["label"])
    expected = {}
    for name, (p, t, tasks) in cases.items():
        p32 = p.astype(np.float32)
        write(os.path.join(out, f"{name}.parquet"), p32, t, tasks)
        expected[name] = metrics(p32, t, tasks)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
