"""Peer side of bench/score: GO-BP-sized predictions, and TorchDrug's metric functions on CPU torch.

    score_bench.py write OUT.parquet          writes 3,000 x 1,943 predictions/v1 (seeded)
    score_bench.py peer OUT.parquet           times reading it + TorchDrug's f1_max, area_under_prc
                                              (verbatim: float32, torch's own argsort), prints JSON
"""

import json
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "tests", "peer"))
# TorchDrug's functions as they are (stable=False: torch's own argsort), shared with the test peer.
from score_peer import area_under_prc, area_under_roc, f1_max  # noqa: E402


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
        "f1_max": f1_max(pred, target, stable=False),
        "auprc@micro": area_under_prc(pred.flatten(), target.long().flatten(), stable=False),
        "auroc@micro": area_under_roc(pred.flatten(), target.long().flatten(), stable=False),
    }
    out["seconds"] = time.perf_counter() - t0
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
