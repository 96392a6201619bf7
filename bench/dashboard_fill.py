"""Fills a tracker for bench/dashboard through its REST API: RUNS runs, each logging KEYS_PER_RUN
metrics drawn from a pool of KEYS keys (plus valid/fmax and test/fmax per epoch) and 3 params;
then one run with a POINTS-point train/loss curve. Prints the experiment id and that run's id.

usage: dashboard_fill.py URL RUNS KEYS KEYS_PER_RUN POINTS
"""
import http.client
import json
import random
import sys
import threading
import urllib.parse

url, runs, keys, per_run, points = sys.argv[1], *map(int, sys.argv[2:6])
u = urllib.parse.urlparse(url)
local = threading.local()


def call(path, body, retry=True):
    if not hasattr(local, "c"):
        local.c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    try:
        local.c.request("POST", "/api/2.0/mlflow/" + path, json.dumps(body), {"Content-Type": "application/json"})
        r = local.c.getresponse()
        text = r.read()
    except (OSError, http.client.HTTPException):
        # a keep-alive connection the server closed while idle: once more on a fresh one
        del local.c
        if not retry:
            raise
        return call(path, body, retry=False)
    if r.status != 200:
        raise SystemExit(f"{path}: {r.status} {text[:300]}")
    return json.loads(text)


exp = call("experiments/create", {"name": f"bench-{random.randrange(1 << 30)}"})["experiment_id"]
pool = [f"m{k:05d}" for k in range(keys)]


def worker(lo, hi):
    rnd = random.Random(lo)
    for i in range(lo, hi):
        rid = call("runs/create", {"experiment_id": exp, "run_name": f"run-{i:05d}", "start_time": 1000 + i})["run"]["info"]["run_id"]
        ms = [{"key": k, "value": rnd.random(), "timestamp": 0, "step": 0} for k in rnd.sample(pool, per_run)]
        for e in range(5):
            v = 0.5 + 0.1 * rnd.random()
            ms += [{"key": "valid/fmax", "value": v, "timestamp": e, "step": e},
                   {"key": "test/fmax", "value": v - 0.02, "timestamp": e, "step": e}]
        for j in range(0, len(ms), 1000):
            call("runs/log-batch", {"run_id": rid, "metrics": ms[j:j + 1000]})
        call("runs/log-batch", {"run_id": rid, "params": [
            {"key": "model", "value": ["fusionprot", "esm2", "gearnet"][i % 3]},
            {"key": "seed", "value": str(i % 5)}, {"key": "lr", "value": ["1e-4", "5e-5"][i % 2]}]})


threads = [threading.Thread(target=worker, args=(t * runs // 4, (t + 1) * runs // 4)) for t in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
big = call("runs/create", {"experiment_id": exp, "run_name": "long-curve", "start_time": 0})["run"]["info"]["run_id"]
rnd = random.Random(7)
v = 2.0
for lo in range(0, points, 1000):
    batch = []
    for s in range(lo, min(points, lo + 1000)):
        v = max(0.01, v * 0.99999 + (rnd.random() - 0.5) * 0.01)
        batch.append({"key": "train/loss", "value": v, "timestamp": s, "step": s})
    call("runs/log-batch", {"run_id": big, "metrics": batch})
print(json.dumps({"experiment_id": exp, "long_run": big}))
