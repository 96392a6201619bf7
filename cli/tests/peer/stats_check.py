"""The dashboard's comparison statistics against scipy / numpy on the same numbers.

Logs runs with the real mlflow client: models "base", "better" and "same" over 6 seeds each (one of
"same"'s seeds is missing, so pairing drops it) on two tasks, then reads the groups API with the
baseline model "base" under Welch's and the paired test and checks, for every group and column:
- mean, sd (n - 1) and n against numpy;
- the 95% bootstrap interval against the same resampling redrawn here (SplitMix64 seeded as the
  server says, numpy's linear percentile) to 1e-12, and against scipy.stats.bootstrap's own
  distribution of the mean (200,000 resamples): its ends lie at that distribution's 2.5% and 97.5%
  points within 0.006 in probability (4 Monte-Carlo standard errors of 10,000 resamples);
- delta, t, df and p against scipy.stats.ttest_ind(equal_var=False) / ttest_rel to 1e-9;
and that the runs route returns a baseline run's values for delta.

usage: stats_check.py URL DB  -> prints "ok" last
"""
import json
import sys
import urllib.request

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from scipy import stats

url = sys.argv[1]
mlflow.set_tracking_uri(url)
c = MlflowClient()
eid = c.create_experiment("stats")
rng = np.random.default_rng(7)
runs = {}
for model, shift in (("base", 0.0), ("better", 0.02), ("same", 0.0)):
    for task in ("ec", "go"):
        for seed in range(6):
            if model == "same" and seed == 4:
                continue
            rid = c.create_run(eid, run_name=f"{model}-{task}-{seed}").info.run_id
            v = 0.6 + shift + 0.01 * seed + float(rng.normal(0, 0.01))
            c.log_batch(rid, metrics=[Metric("test/fmax", v, 0, 0)],
                        params=[Param("model", model), Param("task", task), Param("seed", str(seed))])
            runs[(model, task, seed)] = (rid, v)


def post(path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())


def splitmix(seed):
    state = seed
    mask = (1 << 64) - 1
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def bootstrap(values, resamples, seed, level):
    n = len(values)
    draws = splitmix(seed)
    means = []
    for _ in range(resamples):
        s = 0.0
        for _ in range(n):
            u = (next(draws) >> 11) / float(1 << 53)
            s += values[min(int(u * n), n - 1)]
        means.append(s / n)
    tail = (1 - level) / 2 * 100
    return np.percentile(np.array(means), [tail, 100 - tail])


def close(a, b, tol, what):
    assert a is not None and b is not None and abs(a - b) <= tol * max(1.0, abs(b)), f"{what}: {a} != {b}"


col = "metrics.test/fmax"
for test in ("welch", "paired"):
    g = post("/api/fusionprot/dashboard/groups", {
        "experiment_ids": [eid], "group_by": "params.model,params.task", "columns": [col],
        "baseline": [["params.model", "base"]], "test": test,
    })
    boot = g["bootstrap"]
    assert boot["resamples"] == 10000 and boot["level"] == 0.95, boot
    s = g["columns"][col]
    keys = [dict(k) for k in g["key"]]
    for i, k in enumerate(keys):
        model, task = k["params.model"], k["params.task"]
        vals = [v for (m, t, _), (_, v) in sorted(runs.items()) if m == model and t == task]
        # the server's order is the groups' run order: compare as sets of values via sorted arrays
        x = np.array(vals)
        close(s["mean"][i], float(np.mean(x)), 1e-12, "mean")
        close(s["sd"][i], float(np.std(x, ddof=1)), 1e-12, "sd")
        assert s["n"][i] == len(x)
        # the interval: the server resamples its runs in its own order, so redraw in that order
        order = [runs_by_id for runs_by_id in g["runs"][i]]
        by_id = {rid: v for (rid, v) in runs.values()}
        ours = bootstrap([by_id[r] for r in order], boot["resamples"], boot["seed"], boot["level"])
        close(s["ci_lo"][i], float(ours[0]), 1e-12, "ci_lo")
        close(s["ci_hi"][i], float(ours[1]), 1e-12, "ci_hi")
        # against scipy's own bootstrap distribution of the mean (200,000 resamples): the
        # interval's ends sit at its 2.5% and 97.5% points, in probability (the distribution of
        # a few values' means has atoms and gaps, so a value-space tolerance would not hold)
        dist = np.sort(stats.bootstrap((x,), np.mean, method="percentile", n_resamples=200_000,
                                       random_state=1).bootstrap_distribution)
        for end, q in ((s["ci_lo"][i], 0.025), (s["ci_hi"][i], 0.975)):
            below = np.searchsorted(dist, end - 1e-12, "left") / len(dist)
            upto = np.searchsorted(dist, end + 1e-12, "right") / len(dist)
            assert below - 0.006 <= q <= upto + 0.006, (model, task, end, q, below, upto)
        b = g["baseline_of"][i]
        if model == "base":
            assert b is None and s["delta"][i] is None and s["p"][i] is None
            continue
        assert dict(g["key"][b]) == {"params.model": "base", "params.task": task}
        base_vals = {seed: v for (m, t, seed), (_, v) in runs.items() if m == "base" and t == task}
        these = {seed: v for (m, t, seed), (_, v) in runs.items() if m == model and t == task}
        close(s["delta"][i], float(np.mean(list(these.values())) - np.mean(list(base_vals.values()))), 1e-12, "delta")
        if test == "welch":
            r = stats.ttest_ind(list(these.values()), list(base_vals.values()), equal_var=False)
        else:
            seeds = sorted(set(these) & set(base_vals))
            r = stats.ttest_rel([these[k] for k in seeds], [base_vals[k] for k in seeds])
            assert g["pair_by"] == "seed"
        close(s["t"][i], float(r.statistic), 1e-9, f"{test} t")
        close(s["df"][i], float(r.df), 1e-9, f"{test} df")
        close(s["p"][i], float(r.pvalue), 1e-9, f"{test} p")
    assert g["test"].startswith("Welch" if test == "welch" else "paired"), g["test"]

# the runs table's baseline: that run's values, whichever page it is on
base_id, base_v = runs[("base", "ec", 0)]
page = post("/api/fusionprot/dashboard/runs", {"experiment_ids": [eid], "columns": [col], "limit": 3, "baseline": base_id})
assert page["baseline"]["run_id"] == base_id
close(page["baseline"]["columns"][col], base_v, 1e-15, "baseline value")
try:
    post("/api/fusionprot/dashboard/groups", {"experiment_ids": [eid], "group_by": "params.model", "columns": [col],
                                              "baseline": [["params.lr", "1"]]})
    raise AssertionError("a baseline on a field the groups lack was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 400 and "params.lr" in json.loads(e.read())["message"]
try:
    post("/api/fusionprot/dashboard/groups", {"experiment_ids": [eid], "group_by": "params.model", "columns": [col], "test": "z"})
    raise AssertionError("an unknown test was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 400 and "welch or paired" in json.loads(e.read())["message"]
print("ok")
