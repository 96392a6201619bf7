"""Logs an EC-sized predictions table (the EC benchmark's test set: 1,919 proteins x 538 EC
numbers over the 7 level-1 classes, seeded scores) as a run's `test-predictions-best.parquet`
artifact with the real mlflow client, for bench/dashboard's per-class breakdown timing.

usage: breakdown_fill.py URL WORK_DIR -> prints the run id
"""
import json
import os
import sys

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow import MlflowClient

url, work = sys.argv[1:3]
rng = np.random.default_rng(3)
proteins, width = 1919, 538
tasks = sorted({f"{1 + i % 7}.{1 + (i // 7) % 20}.{1 + (i // 140) % 30}.{i}" for i in range(width)})
target = (rng.random((proteins, width)) < 0.004).astype(np.float32)
target[np.arange(proteins), rng.integers(0, width, proteins)] = 1.0  # every protein has an EC number
pred = (0.5 * target + rng.random((proteins, width))).astype(np.float32)
schema = pa.schema([("protein_id", pa.string()), ("prediction", pa.list_(pa.float32())), ("target", pa.list_(pa.float32()))],
                   metadata={"fusionprot.tasks": json.dumps(tasks)})
path = os.path.join(work, "test-predictions-best.parquet")
pq.write_table(pa.table({"protein_id": [f"P{i:05d}_A" for i in range(proteins)],
                         "prediction": list(pred), "target": list(target)}, schema=schema), path)
mlflow.set_tracking_uri(url)
c = MlflowClient()
run = c.create_run("0", run_name="ec-sized-predictions").info.run_id
c.log_artifact(run, path)
print(run)
