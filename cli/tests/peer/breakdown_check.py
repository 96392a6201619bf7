"""The per-class breakdown against `fusionprot score` on sub-tables built here, independently.

Reads the proteins of a prepared dataset (pyarrow), writes a predictions/v1 table for them over
EC numbers of three level-1 classes (seeded scores), logs it as a run's artifact with the real
mlflow client on a run linked to the dataset, reads /api/fusionprot/dashboard/breakdown, and for
every bucket builds the sub-table itself (EC class: that class's columns and the proteins with a
positive in them; length: the proteins of the bucket by num_residues), scores it with
`fusionprot score --json` and requires the same Fmax, AUPR and AUROC (bit for bit: the same
formulas over the same numbers) and the same protein and column counts.

usage: breakdown_check.py URL DATASET_DIR DATASET_ID FUSIONPROT_BIN WORK_DIR -> prints "ok" last
"""
import glob
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from breakdown_peer import Table

url, dataset, dataset_id, binary, work = sys.argv[1:6]
proteins = pa.concat_tables([pq.read_table(f, columns=["protein_id", "num_residues"])
                             for f in sorted(glob.glob(os.path.join(dataset, "proteins", "*.parquet")))])
ids = proteins.column("protein_id").to_pylist()
length = dict(zip(ids, proteins.column("num_residues").to_pylist()))
assert len(ids) >= 5, ids
tasks = ["1.1.1.1", "1.14.13.-", "2.7.11.1", "3.4.21.4", "3.1.1.-", "3.2.1.17"]
rng = np.random.default_rng(11)
target = (rng.random((len(ids), len(tasks))) < 0.35).astype(np.float32)
pred = (0.6 * target + 0.7 * rng.random((len(ids), len(tasks)))).astype(np.float32)

t = Table(ids, tasks, pred, target, binary, work)
run, b = t.breakdown(url, dataset_id, "ec-breakdown")
same = t.same

same(b["overall"], list(range(len(ids))), list(range(len(tasks))))
views = {v["by"]: v for v in b["breakdowns"]}
ec = views["ec_class"]["buckets"]
assert [x["name"].split()[1] for x in ec] == ["1", "2", "3"], ec
for bucket in ec:
    k = bucket["name"].split()[1]
    cols = [j for j, t in enumerate(tasks) if t.split(".")[0] == k]
    rows = [i for i in range(len(ids)) if target[i, cols].sum() > 0]
    same(bucket, rows, cols)
edges = [(0, 100), (100, 200), (200, 300), (300, 500), (500, 1 << 62)]
seen = 0
for bucket in views["length"]["buckets"]:
    lo = int(bucket["name"].replace("≥ ", "").split("–")[0])
    hi = next(h for (l, h) in edges if l == lo)
    rows = [i for i in range(len(ids)) if lo <= length[ids[i]] < hi]
    same(bucket, rows, list(range(len(tasks))))
    seen += len(rows)
assert seen == len(ids), (seen, len(ids))
assert {u["by"] for u in b["unavailable"]} == {"identity_to_train"}, b["unavailable"]
print(json.dumps({"run_id": run}))
print("ok")
