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
import subprocess
import sys
import urllib.request

import mlflow
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow import MlflowClient

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


def write(path, rows, cols, with_tasks=True):
    schema = pa.schema([("protein_id", pa.string()), ("prediction", pa.list_(pa.float32())),
                        ("target", pa.list_(pa.float32()))],
                       metadata={"fusionprot.tasks": json.dumps([tasks[c] for c in cols])} if with_tasks else None)
    t = pa.table({"protein_id": [ids[r] for r in rows],
                  "prediction": [[float(pred[r, c]) for c in cols] for r in rows],
                  "target": [[float(target[r, c]) for c in cols] for r in rows]}, schema=schema)
    pq.write_table(t, path)


full = os.path.join(work, "test-predictions-best.parquet")
write(full, range(len(ids)), range(len(tasks)))
mlflow.set_tracking_uri(url)
c = MlflowClient()
run = c.create_run("0", run_name="ec-breakdown").info.run_id
c.log_artifact(run, full)
req = urllib.request.Request(f"{url}/api/fusionprot/runs/link-dataset",
                             json.dumps({"run_id": run, "dataset_id": dataset_id, "context": "train"}).encode(),
                             {"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
b = json.loads(urllib.request.urlopen(f"{url}/api/fusionprot/dashboard/breakdown?run_id={run}").read())


def score(rows, cols, name):
    path = os.path.join(work, f"sub-{abs(hash(name))}.parquet")
    write(path, rows, cols)
    out = subprocess.run([binary, "score", path, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def same(bucket, rows, cols):
    s = score(rows, cols, bucket["name"])
    assert bucket["proteins"] == len(rows) and bucket["columns"] == len(cols), (bucket, len(rows), len(cols))
    for ours, theirs in (("fmax", "f1_max"), ("auprc", "auprc@micro"), ("auroc", "auroc@micro")):
        assert bucket[ours] == s[theirs], (bucket["name"], ours, bucket[ours], s[theirs])


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
