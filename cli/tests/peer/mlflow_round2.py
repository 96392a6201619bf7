"""The tracking routes of the second round, driven by the real `mlflow` client (and raw HTTP where
the client hides the status): dataset inputs kept and returned, delete-experiment-tag,
ListArtifacts and `.` paths, the `/ajax-api/2.0/` prefix, and MLflow's validation wording.

usage: mlflow_round2.py TRACKING_URI DB   (DB: a SQLite path or a postgres:// URL)
Prints "ok" and exits 0 when every check holds; an assertion names the first one that fails.
The expected messages are MLflow 3.17.2's (mlflow/server/handlers.py, mlflow/utils/validation.py).
"""
import json
import os
import sys
import tempfile

import requests

import mlflow
import tracker_db
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.exceptions import MlflowException

uri, db = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
c = MlflowClient()
SEE = " See the API docs for more information about request parameters."


def post(path, body, prefix="/api/2.0/mlflow"):
    return requests.post(uri + prefix + path, data=json.dumps(body), headers={"Content-Type": "application/json"})


def get(path, params, prefix="/api/2.0/mlflow"):
    return requests.get(uri + prefix + path, params=params)


def refused(resp, status, code, message):
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["error_code"] == code, body
    assert body["message"] == message, (body["message"], message)


eid = c.create_experiment("round2")
run = c.create_run(eid)
rid = run.info.run_id

# --- log_input: every field kept and returned as MLflow returns it -------------------------
full = Dataset(name="ec-train", digest="d41d8cd9", source_type="local",
               source=json.dumps({"uri": "/data/ec"}), schema=json.dumps({"mlflow_colspec": [{"name": "x"}]}),
               profile=json.dumps({"num_rows": 15550}))
bare = Dataset(name="ec-valid", digest="abc123", source_type="http", source="https://example.org/ec")
c.log_inputs(rid, [DatasetInput(full, [InputTag("mlflow.data.context", "train")]),
                   DatasetInput(bare, [InputTag("mlflow.data.context", "valid"), InputTag("k", "v")])])
# the same (name, digest) again: kept once, its first tags stay
c.log_inputs(rid, [DatasetInput(full, [InputTag("mlflow.data.context", "other")])])
got = c.get_run(rid).inputs.dataset_inputs
assert [d.dataset.name for d in got] == ["ec-train", "ec-valid"], got
d0, d1 = got
assert (d0.dataset.digest, d0.dataset.source_type, d0.dataset.source) == (full.digest, "local", full.source)
assert (d0.dataset.schema, d0.dataset.profile) == (full.schema, full.profile)
assert {t.key: t.value for t in d0.tags} == {"mlflow.data.context": "train"}
assert {t.key: t.value for t in d1.tags} == {"mlflow.data.context": "valid", "k": "v"}
raw = get("/runs/get", {"run_id": rid}).json()["run"]["inputs"]["dataset_inputs"][1]["dataset"]
assert "schema" not in raw and "profile" not in raw, raw
# runs/search returns them too; a run without inputs has "inputs": {}
other = c.create_run(eid).info.run_id
found = {r.info.run_id: r for r in c.search_runs([eid])}
assert [d.dataset.name for d in found[rid].inputs.dataset_inputs] == ["ec-train", "ec-valid"]
assert get("/runs/get", {"run_id": other}).json()["run"]["inputs"] == {}
# the fluent API's log_input (a pandas dataset) round-trips its digest and context
import pandas as pd

with mlflow.start_run(experiment_id=eid) as fluent:
    ds = mlflow.data.from_pandas(pd.DataFrame({"a": [1, 2, 3]}), source="/data/frame.csv", name="frame")
    mlflow.log_input(ds, context="training")
fi = c.get_run(fluent.info.run_id).inputs.dataset_inputs
assert [(d.dataset.name, d.dataset.digest) for d in fi] == [("frame", ds.digest)], fi
assert {t.key: t.value for t in fi[0].tags}["mlflow.data.context"] == "training"
# limits and deleted runs, in MLflow's words; a refused batch keeps none of its datasets
refused(post("/runs/log-inputs", {"run_id": rid, "datasets": [
        {"dataset": {"name": "atomic-a", "digest": "1", "source_type": "local", "source": "s"}},
        {"dataset": {"name": "x", "digest": "0" * 37, "source_type": "local", "source": "s"}}]}),
        400, "INVALID_PARAMETER_VALUE", "'digest' exceeds the maximum length of 36 characters")
assert "atomic-a" not in [d.dataset.name for d in c.get_run(rid).inputs.dataset_inputs]
c.delete_run(other)
refused(post("/runs/log-inputs", {"run_id": other, "datasets": [{"dataset": bare.to_dictionary()}]}),
        400, "INVALID_PARAMETER_VALUE",
        f"The run {other} must be in the 'active' state. Current state is deleted.")
c.restore_run(other)

# --- delete_experiment_tag ---------------------------------------------------------------------
c.set_experiment_tag(eid, "owner", "me")
c.set_experiment_tag(eid, "keep", "yes")
c.delete_experiment_tag(eid, "owner")
assert c.get_experiment(eid).tags == {"keep": "yes"}, c.get_experiment(eid).tags
try:
    c.delete_experiment_tag(eid, "owner")
    raise AssertionError("deleting a missing tag succeeded")
except MlflowException as e:
    assert e.error_code == "RESOURCE_DOES_NOT_EXIST", e.error_code
    assert f"No tag with name: owner in experiment with id {eid}" in e.message, e.message

# --- artifacts: ListArtifacts, `.` paths ----------------------------------------------------------
with tempfile.TemporaryDirectory() as tmp:
    os.makedirs(os.path.join(tmp, "sub"))
    with open(os.path.join(tmp, "a.txt"), "w") as f:
        f.write("alpha\n")
    with open(os.path.join(tmp, "sub", "b.txt"), "w") as f:
        f.write("beta\n")
    c.log_artifacts(rid, tmp)
    listed = get("/artifacts/list", {"run_id": rid}).json()
    assert listed["root_uri"] == c.get_run(rid).info.artifact_uri, listed
    assert [(f["path"], f["is_dir"]) for f in listed["files"]] == [("a.txt", False), ("sub", True)], listed
    assert listed["files"][0]["file_size"] == 6
    sub = get("/artifacts/list", {"run_id": rid, "path": "sub"}).json()
    assert [f["path"] for f in sub["files"]] == ["sub/b.txt"], sub
    assert get("/artifacts/list", {"run_id": rid, "path": "./sub"}).json() == sub
    refused(get("/artifacts/list", {"run_id": rid, "path": "../x"}), 400, "INVALID_PARAMETER_VALUE", "Invalid path")
    assert get("/artifacts/list", {"run_id": rid, "path": "sub/../.."}).status_code == 400
    # the client joins "." to each name itself ("./a.txt"), as it does against mlflow server
    assert sorted(os.path.normpath(a.path) for a in c.list_artifacts(rid, ".")) == ["a.txt", "sub"]
    out = c.download_artifacts(rid, ".", os.path.join(tmp, "down"))
    with open(os.path.join(out, "sub", "b.txt")) as f:
        assert f.read() == "beta\n"

# --- the MLflow UI's /ajax-api/2.0/ prefix --------------------------------------------------------
c.log_metric(rid, "loss", 0.5, step=3)
for path, params in [("/metrics/get-history", {"run_id": rid, "metric_key": "loss"}),
                     ("/runs/get", {"run_id": rid}), ("/experiments/get", {"experiment_id": eid}),
                     ("/artifacts/list", {"run_id": rid})]:
    a, b = get(path, params, "/ajax-api/2.0/mlflow"), get(path, params)
    assert a.status_code == 200 and a.json() == b.json(), (path, a.status_code, a.text)
assert post("/runs/search", {"experiment_ids": [eid]}, "/ajax-api/2.0/mlflow").json() == \
    post("/runs/search", {"experiment_ids": [eid]}).json()

# --- validation: MLflow's status, error code and message ------------------------------------------
INVALID = "INVALID_PARAMETER_VALUE"
refused(post("/runs/log-batch", {"run_id": rid, "metrics": [{"key": "m", "value": 1.0, "step": 0}]}),
        400, INVALID, "Missing value for required parameter 'metrics[0].timestamp'." + SEE)
refused(post("/runs/log-batch", {"run_id": rid, "params": [{"value": "v"}]}),
        400, INVALID, "Missing value for required parameter 'params[0].key'." + SEE)
refused(post("/runs/log-metric", {"run_id": rid, "key": "m", "value": 1.0}),
        400, INVALID, "Missing value for required parameter 'timestamp'." + SEE)
refused(post("/runs/log-metric", {"run_id": rid, "key": "m", "timestamp": 1}),
        400, INVALID, "Missing value for required parameter 'value'." + SEE)
refused(post("/runs/set-tag", {"run_id": 31, "key": "k", "value": "v"}), 400, INVALID,
        "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'." + SEE)
refused(post("/runs/search", {"experiment_ids": [eid], "max_results": 50001}), 400, INVALID,
        "Invalid value 50001 for parameter 'max_results' supplied:  Hint: Value was of type 'int'." + SEE)
refused(post("/runs/search", {"experiment_ids": eid}), 400, INVALID,
        f"Invalid value \"{eid}\" for parameter 'experiment_ids' supplied:  Hint: Value was of type 'str'." + SEE)
refused(post("/experiments/create", {}), 400, INVALID, "Missing value for required parameter 'name'." + SEE)
refused(post("/experiments/delete-experiment-tag", {"experiment_id": eid}), 400, INVALID,
        "Missing value for required parameter 'key'." + SEE)
# the client's own calls keep working: a timestamp it always sends, max_results at the limit
assert c.search_runs([eid], max_results=50000) is not None

# a relative artifact location is made absolute, as MLflow resolves it
rel = c.create_experiment("relative-location", artifact_location="some/where")
loc = c.get_experiment(rel).artifact_location
assert os.path.isabs(loc) and loc.endswith("some/where"), loc

# --- the inputs in the database (the tables SQL reads) ---------------------------------------------
con = tracker_db.connect(db)
rows = con.execute(
    "SELECT d.name, t.name, t.value FROM run_inputs i JOIN input_datasets d ON d.dataset_uuid = i.dataset_uuid "
    "JOIN run_input_tags t ON t.input_uuid = i.input_uuid WHERE i.run_uuid = ? ORDER BY i.position, t.name",
    (rid,)).fetchall()
assert [tuple(r) for r in rows] == [("ec-train", "mlflow.data.context", "train"), ("ec-valid", "k", "v"),
                                    ("ec-valid", "mlflow.data.context", "valid")], rows
assert con.execute("SELECT count(*) FROM input_datasets WHERE experiment_id = ?", (int(eid),)).fetchone()[0] == 3
print("ok")
