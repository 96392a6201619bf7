"""Peer side of bench/score: GO-BP-sized predictions, and TorchDrug's metric functions on CPU torch.

    score_bench.py write OUT.parquet          writes 3,000 x 1,943 predictions/v1 (seeded)
    score_bench.py peer OUT.parquet           times reading it + TorchDrug's f1_max, area_under_prc
                                              (verbatim: float32, torch's own argsort), prints JSON
"""

import json
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch


def area_under_prc(pred, target):
    order = pred.argsort(descending=True)
    target = target[order]
    precision = target.cumsum(0) / torch.arange(1, len(target) + 1, device=target.device)
    return precision[target == 1].sum() / ((target == 1).sum() + 1e-10)


def area_under_roc(pred, target):
    order = pred.argsort(descending=True)
    target = target[order]
    hit = target.cumsum(0)
    all = (target == 0).sum() * (target == 1).sum()
    return hit[target == 0].sum() / (all + 1e-10)


def f1_max(pred, target):
    order = pred.argsort(descending=True, dim=1)
    target = target.gather(1, order)
    precision = target.cumsum(1) / torch.ones_like(target).cumsum(1)
    recall = target.cumsum(1) / (target.sum(1, keepdim=True) + 1e-10)
    is_start = torch.zeros_like(target).bool()
    is_start[:, 0] = 1
    is_start = torch.scatter(is_start, 1, order, is_start)
    all_order = pred.flatten().argsort(descending=True)
    order = order + torch.arange(order.shape[0], device=order.device).unsqueeze(1) * order.shape[1]
    order = order.flatten()
    inv_order = torch.zeros_like(order)
    inv_order[order] = torch.arange(order.shape[0], device=order.device)
    is_start = is_start.flatten()[all_order]
    all_order = inv_order[all_order]
    precision = precision.flatten()
    recall = recall.flatten()
    all_precision = precision[all_order] - torch.where(is_start, torch.zeros_like(precision), precision[all_order - 1])
    all_precision = all_precision.cumsum(0) / is_start.cumsum(0)
    all_recall = recall[all_order] - torch.where(is_start, torch.zeros_like(recall), recall[all_order - 1])
    all_recall = all_recall.cumsum(0) / pred.shape[0]
    all_f1 = 2 * all_precision * all_recall / (all_precision + all_recall + 1e-10)
    return all_f1.max()


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        rng = np.random.default_rng(3)
        n, t = 3000, 1943
        target = (rng.random((n, t)) < 0.006).astype(np.float32)
        pred = (rng.normal(size=(n, t)) + 2.5 * target).astype(np.float32)
        lst = pa.list_(pa.field("item", pa.float32(), nullable=False))
        table = pa.table({
            "protein_id": [f"p{i:05d}" for i in range(n)],
            "prediction": pa.FixedSizeListArray.from_arrays(pred.ravel(), t).cast(lst),
            "target": pa.FixedSizeListArray.from_arrays(target.ravel(), t).cast(lst),
        }).replace_schema_metadata({b"fusionprot.schema": b"predictions/v1"})
        pq.write_table(table, path, compression="zstd")
        return
    t0 = time.perf_counter()
    table = pq.read_table(path)
    width = len(table["prediction"][0])
    pred = torch.from_numpy(table["prediction"].combine_chunks().flatten().to_numpy().reshape(-1, width))
    target = torch.from_numpy(table["target"].combine_chunks().flatten().to_numpy().reshape(-1, width))
    out = {
        "f1_max": f1_max(pred, target).item(),
        "auprc@micro": area_under_prc(pred.flatten(), target.long().flatten()).item(),
        "auroc@micro": area_under_roc(pred.flatten(), target.long().flatten()).item(),
    }
    out["seconds"] = time.perf_counter() - t0
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
