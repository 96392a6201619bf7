"""MLflow's bulk reads (`metrics/get-history-bulk`, `metrics/get-history-bulk-interval`,
`experiments/search-datasets`, under `/ajax-api/2.0/mlflow/` as MLflow's UI calls them and under
`/api/2.0/mlflow/`) against MLflow's own implementation on the same data: the same points are
logged with the real mlflow client into fusionprot and into MLflow 3.17.2's SqlAlchemyStore (a
SQLite file), and every answer must be the reference's — the handler's logic for get-history-bulk,
the store's NTILE sampling for the interval, its dataset summaries — plus MLflow's refusals.

usage: mlflow_bulk.py TRACKING_URI DB   (DB: unused; the server's database)
Prints "ok" when every check holds.
"""
import json
import math
import sys
import tempfile

import requests

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

uri = sys.argv[1]
mlflow.set_tracking_uri(uri)
ours = MlflowClient()
tmp = tempfile.mkdtemp()
ref = SqlAlchemyStore(f"sqlite:///{tmp}/ref.db", f"{tmp}/ref-artifacts")
SEE = " See the API docs for more information about request parameters."

# the same runs in both: a long noisy one (repeated steps, a NaN, out-of-order logging), a short
# one, one without the key
series = {
    "long": [(s // 3, 1000 + s, float("nan") if s == 500 else math.sin(s / 17.0)) for s in range(1200)],
    "short": [(s, 50 - s, float(s)) for s in range(7)][::-1],
    "empty": [],
}
exp_ours = ours.create_experiment("bulk")
exp_ref = ref.create_experiment("bulk")
ids = {}
for name, pts in series.items():
    a = ours.create_run(exp_ours, run_name=name).info.run_id
    b = ref.create_run(exp_ref, user_id="u", start_time=0, tags=[], run_name=name).info.run_id
    ms = [Metric("loss", v, ts, step) for (step, ts, v) in pts]
    for i in range(0, len(ms), 1000):
        ours.log_batch(a, metrics=ms[i:i + 1000])
        ref.log_batch(b, metrics=ms[i:i + 1000], params=[], tags=[])
    ours.log_batch(a, metrics=[Metric("other", 1.0, 0, 0)])
    ref.log_batch(b, metrics=[Metric("other", 1.0, 0, 0)], params=[], tags=[])
    ids[name] = (a, b)


def same_value(x, y):
    if isinstance(x, str) or isinstance(y, str):  # "NaN" over JSON
        return str(x) == str(y) or (math.isnan(float(x)) and math.isnan(float(y)))
    return x == y or (math.isnan(x) and math.isnan(y))


def pts(metrics):
    return [(m["key"], m["value"], int(m["timestamp"]), int(m["step"])) for m in metrics]


def check_same(got, want, what):
    assert len(got) == len(want), (what, len(got), len(want))
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[2:] == w[2:] and same_value(g[1], w[1]), (what, g, w)


for prefix in ("/ajax-api/2.0/mlflow", "/api/2.0/mlflow"):
    # get-history-bulk: MLflow's handler over its store (runs sorted by id; each run's points by
    # timestamp, step, value; capped at max_results)
    for max_results in (None, 5, 25000):
        names = ["long", "short", "empty"]
        params = [("run_id", ids[n][0]) for n in names] + [("metric_key", "loss")]
        if max_results:
            params.append(("max_results", max_results))
        r = requests.get(f"{uri}{prefix}/metrics/get-history-bulk", params=params)
        assert r.status_code == 200, r.text
        got = r.json()["metrics"]
        want = []
        for n in sorted(names, key=lambda n: ids[n][0]):
            hist = sorted(ref.get_metric_history(ids[n][1], "loss", max_results=max_results or 25000),
                          key=lambda m: (m.timestamp, m.step, m.value))
            want += [("loss", m.value, m.timestamp, m.step) for m in hist]
        want = want[: (max_results or 25000)]
        check_same(pts(got), want, f"bulk max={max_results}")
        assert {m["run_id"] for m in got} <= {ids[n][0] for n in names}
    # get-history-bulk-interval: the store's sampling
    for max_results in (1, 2, 4, 10, 250, 2500, None):
        for rng in (None, (100, 300), (2, 2)):
            params = [("run_ids", ids[n][0]) for n in ("long", "short", "empty")] + [("metric_key", "loss")]
            if max_results:
                params.append(("max_results", max_results))
            if rng:
                params += [("start_step", rng[0]), ("end_step", rng[1])]
            r = requests.get(f"{uri}{prefix}/metrics/get-history-bulk-interval", params=params)
            assert r.status_code == 200, r.text
            got = r.json()["metrics"]
            want = ref.get_metric_history_bulk_interval(
                run_ids=[ids[n][1] for n in ("long", "short", "empty")], metric_key="loss",
                max_results=max_results or 2500, start_step=rng[0] if rng else None, end_step=rng[1] if rng else None)
            check_same(pts(got), [("loss", m.value, m.timestamp, m.step) for m in want], f"interval {max_results} {rng}")
            back = {b: a for a, b in ids.values()}
            assert [m["run_id"] for m in got] == [back[m.run_id] for m in want]

    # MLflow's refusals
    def refused(r, message):
        assert r.status_code == 400, (r.status_code, r.text)
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text
        assert r.json()["message"] == message, (r.json()["message"], message)

    run = ids["long"][0]
    interval = f"{uri}{prefix}/metrics/get-history-bulk-interval"
    refused(requests.get(interval, params={"metric_key": "loss"}),
            "Missing value for required parameter 'run_ids'." + SEE)
    refused(requests.get(interval, params={"run_ids": run}),
            "Missing value for required parameter 'metric_key'." + SEE)
    refused(requests.get(interval, params={"run_ids": run, "metric_key": "loss", "max_results": 0}),
            "max_results must be between 1 and 2500." + SEE)
    refused(requests.get(interval, params={"run_ids": run, "metric_key": "loss", "max_results": 2501}),
            "max_results must be between 1 and 2500." + SEE)
    refused(requests.get(interval, params={"run_ids": run, "metric_key": "loss", "start_step": 3}),
            "If either start step or end step are specified, both must be specified.")
    refused(requests.get(interval, params={"run_ids": run, "metric_key": "loss", "start_step": 3, "end_step": 1}),
            "end_step must be greater than start_step. Found start_step=3 and end_step=1.")
    refused(requests.get(interval, params=[("run_ids", run)] * 101 + [("metric_key", "loss")]),
            "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids." + SEE)
    r = requests.get(interval, params={"run_ids": "0" * 32, "metric_key": "loss"})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text
    bulk = f"{uri}{prefix}/metrics/get-history-bulk"
    refused(requests.get(bulk, params={"metric_key": "loss"}),
            "GetMetricHistoryBulk request must specify at least one run_id.")
    refused(requests.get(bulk, params={"run_id": run}),
            "GetMetricHistoryBulk request must specify a metric_key.")
    refused(requests.get(bulk, params=[("run_id", run)] * 101 + [("metric_key", "loss")]),
            "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received 101 run_ids.")

# search-datasets: the same inputs in both, summaries as the store gives them
for name, ctx in (("train-set", "train"), ("eval-set", "eval"), ("nocontext", None)):
    ds = Dataset(name=name, digest=f"d-{name}", source_type="local", source=f"/data/{name}")
    tags = [InputTag("mlflow.data.context", ctx)] if ctx else []
    ours.log_inputs(ids["long"][0], [DatasetInput(ds, tags)])
    ref.log_inputs(ids["long"][1], [DatasetInput(ds, tags)])
ours.log_inputs(ids["short"][0], [DatasetInput(Dataset(name="train-set", digest="d-train-set", source_type="local", source="/data/train-set"), [InputTag("mlflow.data.context", "train")])])
ref.log_inputs(ids["short"][1], [DatasetInput(Dataset(name="train-set", digest="d-train-set", source_type="local", source="/data/train-set"), [InputTag("mlflow.data.context", "train")])])
want = sorted((s.name, s.digest, s.context) for s in ref._search_datasets([exp_ref]))
for prefix in ("/ajax-api/2.0/mlflow", "/api/2.0/mlflow"):
    r = requests.post(f"{uri}{prefix}/experiments/search-datasets", data=json.dumps({"experiment_ids": [exp_ours]}),
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    got = r.json()["dataset_summaries"]
    assert all(s["experiment_id"] == exp_ours for s in got), got
    assert sorted((s["name"], s["digest"], s.get("context")) for s in got) == want, (got, want)
    r = requests.post(f"{uri}{prefix}/experiments/search-datasets", data="{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["message"] == "SearchDatasets request must specify at least one experiment_id.", r.text
# runs/get and runs/search carry MLflow 3's `outputs` ({} for a run without logged models), as
# MLflow's own handler serialises the store's run
from mlflow.protos.service_pb2 import GetRun
from mlflow.utils.proto_json_utils import message_to_json
theirs = GetRun.Response()
theirs.run.MergeFrom(ref.get_run(ids["short"][1]).to_proto())
theirs = json.loads(message_to_json(theirs))["run"]
mine = requests.get(f"{uri}/api/2.0/mlflow/runs/get", params={"run_id": ids["short"][0]}).json()["run"]
assert mine["outputs"] == theirs["outputs"] == {}, (mine.get("outputs"), theirs.get("outputs"))
assert set(mine) == set(theirs), (set(mine), set(theirs))
found = requests.post(f"{uri}/api/2.0/mlflow/runs/search", headers={"Content-Type": "application/json"},
                      data=json.dumps({"experiment_ids": [exp_ours]})).json()["runs"]
assert all(r["outputs"] == {} for r in found), found[0]

# a negative timestamp is refused as MLflow refuses it, in a batch and alone
r = requests.post(f"{uri}/api/2.0/mlflow/runs/log-batch", headers={"Content-Type": "application/json"},
                  data=json.dumps({"run_id": ids["short"][0], "metrics": [{"key": "x", "value": 6.0, "timestamp": -1, "step": 0}]}))
assert r.status_code == 400 and r.json()["message"] == (
    "Invalid value -1 for parameter 'metrics[0].timestamp' supplied: metric 'x' (value=6.0). "
    "Timestamp must be a nonnegative long (64-bit integer) "), r.text
r = requests.post(f"{uri}/api/2.0/mlflow/runs/log-metric", headers={"Content-Type": "application/json"},
                  data=json.dumps({"run_id": ids["short"][0], "key": "x", "value": 0.5, "timestamp": -3}))
assert r.status_code == 400 and r.json()["message"] == (
    "Invalid value -3 for parameter 'timestamp' supplied: metric 'x' (value=0.5). "
    "Timestamp must be a nonnegative long (64-bit integer) "), r.text
print("ok")
