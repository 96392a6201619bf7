"""What the breakdown peers share: a predictions/v1 table of seeded scores written for any rows and
columns, logged as a run's artifact with the real mlflow client on a run linked to a dataset, and
each bucket the server reports compared with `fusionprot score --json` on the sub-table built here.
"""
import json
import os
import subprocess
import urllib.request

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow import MlflowClient


class Table:
    """`ids` x `tasks`, scores `pred` and targets `target` (numpy arrays of that shape)."""

    def __init__(self, ids, tasks, pred, target, binary, work):
        self.ids, self.tasks, self.pred, self.target = ids, tasks, pred, target
        self.binary, self.work, self.n = binary, work, 0

    def write(self, path, rows, cols):
        schema = pa.schema([("protein_id", pa.string()), ("prediction", pa.list_(pa.float32())),
                            ("target", pa.list_(pa.float32()))],
                           metadata={"fusionprot.tasks": json.dumps([self.tasks[c] for c in cols])})
        pq.write_table(pa.table({"protein_id": [self.ids[r] for r in rows],
                                 "prediction": [[float(self.pred[r, c]) for c in cols] for r in rows],
                                 "target": [[float(self.target[r, c]) for c in cols] for r in rows]},
                                schema=schema), path)

    def breakdown(self, url, dataset_id, run_name, tags=None):
        """Logs the whole table on a new run linked to the dataset; the run id and its breakdown."""
        full = os.path.join(self.work, "test-predictions-best.parquet")
        self.write(full, range(len(self.ids)), range(len(self.tasks)))
        mlflow.set_tracking_uri(url)
        c = MlflowClient()
        run = c.create_run("0", run_name=run_name, tags=tags or {}).info.run_id
        c.log_artifact(run, full)
        req = urllib.request.Request(f"{url}/api/fusionprot/runs/link-dataset",
                                     json.dumps({"run_id": run, "dataset_id": dataset_id, "context": "train"}).encode(),
                                     {"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        return run, json.loads(urllib.request.urlopen(f"{url}/api/fusionprot/dashboard/breakdown?run_id={run}").read())

    def same(self, bucket, rows, cols):
        """The bucket is `fusionprot score` on rows x cols: counts, and Fmax / AUPR / AUROC bit for bit."""
        self.n += 1
        path = os.path.join(self.work, f"sub-{self.n}.parquet")
        self.write(path, rows, cols)
        s = json.loads(subprocess.run([self.binary, "score", path, "--json"], check=True, capture_output=True,
                                      text=True).stdout)
        assert bucket["proteins"] == len(rows) and bucket["columns"] == len(cols), (bucket, len(rows), len(cols))
        for ours, theirs in (("fmax", "f1_max"), ("auprc", "auprc@micro"), ("auroc", "auroc@micro")):
            assert bucket[ours] == s[theirs], (bucket["name"], ours, bucket[ours], s[theirs])
