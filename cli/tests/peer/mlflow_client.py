"""Drives a tracking server with the real `mlflow` client (pinned in scripts/setup) and checks
what it reads back, then checks the stored values straight in the database (SQLite, or PostgreSQL through psycopg2).

usage: mlflow_client.py TRACKING_URI DB ARTIFACT_DIR   (DB: a SQLite path or a postgres:// URL)
Prints "ok" and exits 0 when every check holds; an assertion names the first one that fails.
"""
import math
import os
import sys
import tempfile

import mlflow
import tracker_db
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

uri, db = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
c = MlflowClient()

# experiments: create, get, get-by-name, search, rename, tag, delete/restore
eid = c.create_experiment("fp-exp", tags={"team": "fusionprot"})
assert c.get_experiment(eid).name == "fp-exp"
assert c.get_experiment_by_name("fp-exp").experiment_id == eid
assert c.get_experiment_by_name("nope") is None
try:
    c.create_experiment("fp-exp")
    raise AssertionError("duplicate experiment accepted")
except MlflowException as e:
    assert e.error_code == "RESOURCE_ALREADY_EXISTS", e.error_code
other = c.create_experiment("to-delete")
c.delete_experiment(other)
assert other not in [e.experiment_id for e in c.search_experiments()]
assert other in [e.experiment_id for e in c.search_experiments(view_type=ViewType.DELETED_ONLY)]
c.restore_experiment(other)
c.rename_experiment(other, "renamed")
c.set_experiment_tag(other, "k", "v")
assert c.get_experiment(other).tags["k"] == "v"
assert [e.name for e in c.search_experiments(filter_string="name LIKE 'fp-%'")] == ["fp-exp"]
assert [e.name for e in c.search_experiments(filter_string="tags.team = 'fusionprot'")] == ["fp-exp"]

# runs: fluent API with params, metrics, tags; batches; history
mlflow.set_experiment("fp-exp")
ids = []
for i, lr in enumerate([0.1, 0.01, 0.001]):
    with mlflow.start_run(run_name=f"run-{i}") as run:
        mlflow.log_params({"lr": lr, "model": "fusionprot" if i else "esm2"})
        mlflow.set_tags({"stage": "dev", "i": str(i)})
        for step in range(20):
            mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
        mlflow.log_metrics({"fmax": 0.5 + 0.1 * i, "auroc": 0.7})
        ids.append(run.info.run_id)
c.log_batch(ids[0], metrics=[Metric("batch", float(k), 1000 + k, k) for k in range(500)],
            params=[Param(f"p{k}", str(k)) for k in range(100)], tags=[RunTag("t", "x")])
r = c.get_run(ids[0])
assert r.info.status == "FINISHED" and r.info.run_name == "run-0"
assert r.data.params["lr"] == "0.1" and r.data.params["p99"] == "99"
assert r.data.metrics["batch"] == 499.0 and r.data.tags["t"] == "x"
hist = c.get_metric_history(ids[0], "loss")
assert [m.step for m in hist] == list(range(20)) and abs(hist[3].value - 0.25) < 1e-12
assert len(c.get_metric_history(ids[0], "batch")) == 500

# params are immutable, tags overwrite, NaN / inf stored as MLflow stores them
try:
    c.log_param(ids[0], "lr", "0.5")
    raise AssertionError("param overwrite accepted")
except MlflowException as e:
    assert e.error_code == "INVALID_PARAMETER_VALUE"
c.set_tag(ids[0], "stage", "final")
assert c.get_run(ids[0]).data.tags["stage"] == "final"
c.log_metric(ids[1], "odd", float("nan"), step=1)
c.log_metric(ids[1], "odd", float("inf"), step=2)
odd = c.get_metric_history(ids[1], "odd")
assert math.isnan(odd[0].value) and odd[1].value == 1.7976931348623157e308, odd

# a batch over the limits, or with one bad item, is refused whole: nothing of it is written
# (sent raw: the client itself splits batches at MLflow's limits)
import requests

def raw_batch(body):
    return requests.post(f"{uri}/api/2.0/mlflow/runs/log-batch", json=body, timeout=30)

resp = raw_batch({"run_id": ids[2], "metrics": [{"key": "big", "value": 1, "timestamp": 1, "step": k} for k in range(1001)]})
assert resp.status_code == 400 and resp.json()["error_code"] == "INVALID_PARAMETER_VALUE", resp.text
resp = raw_batch({"run_id": ids[2], "metrics": [{"key": "big", "value": 1, "timestamp": 1, "step": k} for k in range(900)],
                  "params": [{"key": "lr", "value": "changed"}]})
assert resp.status_code == 400 and "Changing param values" in resp.json()["message"], resp.text
assert c.get_metric_history(ids[2], "big") == []
resp = raw_batch({"run_id": ids[2], "metrics": [{"key": "big", "value": 1, "timestamp": 1, "step": k} for k in range(1000)]})
assert resp.status_code == 200, resp.text
assert len(c.get_metric_history(ids[2], "big")) == 1000

# search: filters over metrics, params, tags and attributes; ordering; paging
runs = c.search_runs([eid], "metrics.fmax > 0.55 and params.model = 'fusionprot'", order_by=["metrics.fmax DESC"])
assert [x.info.run_name for x in runs] == ["run-2", "run-1"], [x.info.run_name for x in runs]
runs = c.search_runs([eid], "tags.stage = 'final'")
assert [x.info.run_id for x in runs] == [ids[0]]
runs = c.search_runs([eid], "attributes.run_name LIKE 'run-%' and attributes.status = 'FINISHED'", order_by=["params.lr ASC"])
assert [x.info.run_name for x in runs] == ["run-2", "run-1", "run-0"]
page1 = c.search_runs([eid], max_results=2, order_by=["attributes.run_name ASC"])
page2 = c.search_runs([eid], max_results=2, order_by=["attributes.run_name ASC"], page_token=page1.token)
assert [x.info.run_name for x in page1] == ["run-0", "run-1"] and [x.info.run_name for x in page2] == ["run-2"]
assert page2.token is None
df = mlflow.search_runs(experiment_ids=[eid])
assert len(df) == 3

# delete / restore a run
c.delete_run(ids[2])
assert len(c.search_runs([eid])) == 2
assert len(c.search_runs([eid], run_view_type=ViewType.ALL)) == 3
c.restore_run(ids[2])
assert len(c.search_runs([eid])) == 3

# artifacts through the mlflow-artifacts proxy: upload, list, download
with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(tmp, "notes.txt")
    with open(src, "w") as f:
        f.write("fusionprot artifact\n")
    c.log_artifact(ids[0], src)
    os.makedirs(os.path.join(tmp, "ckpt", "sub"))
    with open(os.path.join(tmp, "ckpt", "sub", "w.bin"), "wb") as f:
        f.write(bytes(range(256)) * 4000)
    c.log_artifacts(ids[0], os.path.join(tmp, "ckpt"), artifact_path="model")
    c.log_dict(ids[0], {"a": 1}, "meta/config.json")
    names = sorted(a.path for a in c.list_artifacts(ids[0]))
    assert names == ["meta", "model", "notes.txt"], names
    sub = c.list_artifacts(ids[0], "model/sub")
    assert [(a.path, a.file_size) for a in sub] == [("model/sub/w.bin", 1024000)], sub
    out = c.download_artifacts(ids[0], "", os.path.join(tmp, "down"))
    with open(os.path.join(out, "notes.txt")) as f:
        assert f.read() == "fusionprot artifact\n"
    with open(os.path.join(out, "model", "sub", "w.bin"), "rb") as f:
        assert f.read() == bytes(range(256)) * 4000
    assert mlflow.artifacts.load_dict(f"runs:/{ids[0]}/meta/config.json") == {"a": 1}
art_dir = sys.argv[3]
assert os.path.isfile(os.path.join(art_dir, eid, ids[0], "artifacts", "model", "sub", "w.bin")), "stored under the root"

# the stored values, read straight from the database
con = tracker_db.connect(db)
assert con.execute("SELECT count(*) FROM metrics WHERE run_uuid = ? AND key = 'batch'", (ids[0],)).fetchone()[0] == 500
assert con.execute("SELECT value FROM params WHERE run_uuid = ? AND key = 'lr'", (ids[0],)).fetchone()[0] == "0.1"
assert tuple(con.execute("SELECT value, is_nan FROM metrics WHERE run_uuid = ? AND key = 'odd' AND step = 1", (ids[1],)).fetchone()) == (0.0, 1)
assert con.execute("SELECT status FROM runs WHERE run_uuid = ?", (ids[1],)).fetchone()[0] == "FINISHED"
assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
assert con.execute("SELECT count(*) FROM metrics WHERE key = 'big'").fetchone()[0] == 1000
print("ok")
