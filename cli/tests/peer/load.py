"""Concurrent logging load for the tracker, with retries: CLIENTS threads each create a run and
log POINTS metric points in log-batch requests of BATCH, retrying (with backoff) whatever fails,
so the run completes even if the server is killed and restarted meanwhile. Then every point is
read back through get-history and checked: present exactly once.

usage: load.py ADDR CLIENTS POINTS BATCH
Prints a JSON summary; exits non-zero if a point is missing or duplicated.
"""
import http.client
import json
import sys
import threading
import time

addr, clients, points, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
host, port = addr.rsplit(":", 1)
retries = [0]
lock = threading.Lock()


def call(method, path, body=None, deadline=120.0):
    start = time.time()
    delay = 0.05
    while True:
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            data = json.dumps(body) if body is not None else None
            conn.request(method, path, data, {"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            text = resp.read()
            conn.close()
            if resp.status == 200:
                return json.loads(text)
            if resp.status < 500:
                raise RuntimeError(f"{method} {path}: {resp.status} {text[:300]!r}")
        except (OSError, http.client.HTTPException):
            pass
        with lock:
            retries[0] += 1
        if time.time() - start > deadline:
            raise RuntimeError(f"{method} {path}: no answer within {deadline} s")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


run_ids = [None] * clients
errors = []


def client(i):
    try:
        # run creation is not idempotent: a retry after a lost answer may create a second, empty run
        run = call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": "0", "run_name": f"load-{i}"})
        rid = run["run"]["info"]["run_id"]
        run_ids[i] = rid
        for start in range(0, points, batch):
            metrics = [{"key": "m", "value": float(s), "timestamp": 1000 + s, "step": s} for s in range(start, min(points, start + batch))]
            call("POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": rid, "metrics": metrics})
    except Exception as e:  # noqa: BLE001
        errors.append(f"client {i}: {e}")


t0 = time.time()
threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.time() - t0
if errors:
    print(json.dumps({"errors": errors[:5]}))
    sys.exit(1)
bad = []
total = 0
for rid in run_ids:
    hist = call("GET", f"/api/2.0/mlflow/metrics/get-history?run_id={rid}&metric_key=m")["metrics"]
    steps = [int(m["step"]) for m in hist]
    total += len(steps)
    if sorted(steps) != list(range(points)):
        bad.append((rid, len(steps), len(set(steps))))
print(json.dumps({"points": total, "seconds": round(elapsed, 2), "retries": retries[0], "bad_runs": bad[:5],
                  "points_per_s": round(total / elapsed)}))
sys.exit(1 if bad else 0)
