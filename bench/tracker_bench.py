"""Load test for MLflow-compatible tracking servers, after FastTrackML's published MLflow load
test: USERS concurrent users × ITERATIONS iterations of create-run, log-batch of 10 metrics,
log-batch of 500 metrics, log-batch of 10 params, search-runs, search-experiments and
get-history; then search-runs and get-history latency on RUNS runs × POINTS points.

usage: tracker_bench.py NAME URL USERS ITERATIONS RUNS POINTS   → one JSON line of statistics
"""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

name, url, users, iterations, n_runs, n_points = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
u = urllib.parse.urlparse(url)
lat = {}
failures = {}
lock = threading.Lock()
local = threading.local()


def conn():
    if not hasattr(local, "c"):
        local.c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    return local.c


def call(endpoint, method, path, body=None):
    data = json.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    t = time.perf_counter()
    try:
        c = conn()
        c.request(method, path, data, headers)
        r = c.getresponse()
        text = r.read()
        ok = r.status == 200
    except (OSError, http.client.HTTPException):
        local.__dict__.pop("c", None)
        ok, text = False, b""
    dt = time.perf_counter() - t
    with lock:
        lat.setdefault(endpoint, []).append(dt)
        # a 404 from get-by-name is the expected "not there yet"
        if not ok and endpoint != "get-experiment":
            failures[endpoint] = failures.get(endpoint, 0) + 1
    return json.loads(text) if ok and text else {}


def experiment(exp_name):
    r = call("get-experiment", "GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + urllib.parse.quote(exp_name))
    if "experiment" in r:
        return r["experiment"]["experiment_id"]
    return call("create-experiment", "POST", "/api/2.0/mlflow/experiments/create", {"name": exp_name})["experiment_id"]


def user(i, exp):
    for it in range(iterations):
        run = call("create-run", "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": exp, "start_time": int(time.time() * 1000)})
        rid = run.get("run", {}).get("info", {}).get("run_id")
        if not rid:
            continue
        now = int(time.time() * 1000)
        call("log-batch-10", "POST", "/api/2.0/mlflow/runs/log-batch",
             {"run_id": rid, "metrics": [{"key": f"m{k}", "value": k * 0.5, "timestamp": now, "step": 0} for k in range(10)]})
        call("log-batch-500", "POST", "/api/2.0/mlflow/runs/log-batch",
             {"run_id": rid, "metrics": [{"key": f"m{k % 10}", "value": k * 0.1, "timestamp": now, "step": k} for k in range(500)]})
        call("log-batch-params", "POST", "/api/2.0/mlflow/runs/log-batch",
             {"run_id": rid, "params": [{"key": f"p{k}", "value": str(k)} for k in range(10)]})
        call("search-runs", "POST", "/api/2.0/mlflow/runs/search",
             {"experiment_ids": [exp], "filter": "metrics.m1 > 0", "max_results": 10, "order_by": ["attributes.start_time DESC"]})
        call("search-experiments", "POST", "/api/2.0/mlflow/experiments/search", {"max_results": 10})
        call("get-history", "GET", f"/api/2.0/mlflow/metrics/get-history?run_id={rid}&metric_key=m1")


def stats(xs):
    xs = sorted(xs)
    return {"n": len(xs), "mean_ms": 1e3 * statistics.fmean(xs), "p99_ms": 1e3 * xs[min(len(xs) - 1, int(0.99 * len(xs)))]}


exp = experiment(f"load-{int(time.time())}")
t0 = time.time()
threads = [threading.Thread(target=user, args=(i, exp)) for i in range(users)]
for t in threads:
    t.start()
for t in threads:
    t.join()
load_wall = time.time() - t0
load = {k: stats(v) for k, v in lat.items() if k not in ("get-experiment", "create-experiment")}
load_failures = dict(failures)

# search-runs and get-history on RUNS runs × POINTS points
lat.clear()
failures.clear()
big = experiment(f"big-{int(time.time())}")
ids = []
t0 = time.time()


def fill(part):
    for _ in part:
        run = call("fill-create", "POST", "/api/2.0/mlflow/runs/create", {"experiment_id": big, "start_time": int(time.time() * 1000)})
        rid = run["run"]["info"]["run_id"]
        with lock:
            ids.append(rid)
        for s in range(0, n_points, 1000):
            call("fill-batch", "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": rid, "metrics": [
                {"key": "loss", "value": 1.0 / (k + 1), "timestamp": 1000 + k, "step": k} for k in range(s, min(n_points, s + 1000))]})


fillers = [threading.Thread(target=fill, args=(range(i, n_runs, 8),)) for i in range(8)]
for t in fillers:
    t.start()
for t in fillers:
    t.join()
fill_wall = time.time() - t0
fill_failures = dict(failures)
lat.clear()
for k in range(50):
    call("search-runs (big)", "POST", "/api/2.0/mlflow/runs/search",
         {"experiment_ids": [big], "filter": "metrics.loss < 0.5", "max_results": 100, "order_by": ["metrics.loss ASC"]})
    call("get-history (big)", "GET", f"/api/2.0/mlflow/metrics/get-history?run_id={ids[k * 7 % len(ids)]}&metric_key=loss")
big_stats = {k: stats(v) for k, v in lat.items()}
print(json.dumps({"name": name, "load": load, "load_wall_s": load_wall, "load_failures": load_failures,
                  "fill_wall_s": fill_wall, "fill_failures": fill_failures, "big": big_stats,
                  "big_failures": dict(failures)}))
