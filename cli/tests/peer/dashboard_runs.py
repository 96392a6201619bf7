"""Logs the dashboard tests' runs with the real mlflow client: 2 models x 3 seeds (x 2 learning
rates for one model) with valid / test Fmax per epoch, the test Fmax at the best valid epoch, a
per-step train loss, and one run whose name is an XSS probe (with a dataset input named like one).

usage: dashboard_runs.py TRACKING_URI  -> prints the run ids as JSON
"""
import json
import sys

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient()
eid = c.create_experiment("ec-dashboard")
ids = {}
k = 0
for model, lrs in (("fusionprot", ("1e-4", "5e-5")), ("esm2", ("1e-4",))):
    for lr in lrs:
        for seed in (1, 2, 3):
            k += 1
            run = c.create_run(eid, run_name=f"{model}-{lr}-s{seed}", start_time=1_000 + k)
            rid = run.info.run_id
            base = (0.62 if model == "fusionprot" else 0.55) + 0.013 * seed + (0.01 if lr == "1e-4" else 0.0)
            metrics, best, best_test = [], None, None
            for epoch in range(12):
                peak = 6 + seed % 3
                v = base - 0.008 * abs(epoch - peak)
                t = v - 0.03 + 0.0005 * epoch
                metrics += [Metric("valid/fmax", v, epoch, epoch), Metric("test/fmax", t, epoch, epoch)]
                if best is None or v > best:
                    best, best_test = v, t
            metrics += [Metric("train/loss", 2.0 / (1 + s / 50) + 0.001 * k, s, s) for s in range(2000)]
            metrics.append(Metric("test_at_best_valid/fmax", best_test, 12, 12))
            for i in range(0, len(metrics), 1000):
                c.log_batch(rid, metrics=metrics[i:i + 1000])
            c.log_batch(rid, params=[Param("model", model), Param("lr", lr), Param("seed", str(seed))])
            c.set_terminated(rid)
            ids[f"{model}-{lr}-s{seed}"] = rid
probe = c.create_run(eid, run_name="<img src=x onerror=document.title='pwned'>", start_time=9_999)
c.log_batch(probe.info.run_id, metrics=[Metric("valid/fmax", 0.1, 0, 0)],
            params=[Param("model", "<script>document.title='pwned2'</script>"), Param("seed", "9")])
# a dataset input whose name is a probe too: shown on the run page, as text
c.log_inputs(probe.info.run_id, [DatasetInput(
    Dataset(name="<b>ec-train</b>", digest="d41d8cd9", source_type="local", source="/data/ec"),
    [InputTag("mlflow.data.context", "train")])])
ids["probe"] = probe.info.run_id
print(json.dumps({"experiment_id": eid, "runs": ids}))
