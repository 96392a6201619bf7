"""GO term depth and identity-to-train breakdowns against independent references.

- `go_terms`: every row's depth, level, primary id and namespace are GOATOOLS' (`GODag` over the
  same OBO file: `depth` the longest is_a path to the root, `level` the shortest), and the table
  holds exactly GOATOOLS' term ids (alternative ids included, obsolete terms left out).
- The breakdown: a predictions/v1 table over the GO-BP vocabulary for every protein (seeded
  scores and targets) is logged with the real mlflow client on a run linked to the dataset and
  tagged `split=official`; for every bucket the sub-table is built here (depth: the columns of
  the terms GOATOOLS puts in the bucket, the proteins with a positive in them; identity to train:
  each test chain in the bucket of the lowest `<c%` column of the archive's own test CSV that
  marks it, train / valid chains by the inner zip that holds them) and scored with
  `fusionprot score --json`: the same Fmax, AUPR, AUROC bit for bit, the same counts.

usage: go_breakdown_check.py URL DATASET_DIR DATASET_ID FUSIONPROT_BIN WORK_DIR OBO ARCHIVE_ZIP
prints the run id as JSON, then "ok"
"""
import glob
import io
import json
import os
import sys
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from goatools.obo_parser import GODag

from breakdown_peer import Table

url, dataset, dataset_id, binary, work, obo, archive = sys.argv[1:8]


def table(name, columns=None):
    files = sorted(glob.glob(os.path.join(dataset, name, "*.parquet")))
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files])


# 1. go_terms is GOATOOLS' reading of the same file.
dag = GODag(obo, prt=None, load_obsolete=False)
terms = table("go_terms").to_pylist()
assert sorted(r["term_id"] for r in terms) == sorted(dag.keys()), (len(terms), len(dag))
for r in terms:
    rec = dag[r["term_id"]]
    got = (r["primary_id"], r["namespace"], r["depth"], r["level"])
    assert got == (rec.id, rec.namespace, rec.depth, rec.level), (r, rec.id, rec.depth, rec.level)

# 2. The archive's own splits and identity flags.
with zipfile.ZipFile(archive) as z:
    part_of = {}
    for part in ("train", "valid", "test"):
        inner = zipfile.ZipFile(io.BytesIO(z.read(f"GeneOntology/{part}.zip")))
        for n in inner.namelist():
            base = os.path.basename(n)
            if base:
                part_of[base.split("_")[0]] = part
    lines = z.read("GeneOntology/nrPDB-GO_test.csv").decode().splitlines()
header = lines[0].split(",")
assert header == ["PDB-chain", "<30%", "<40%", "<50%", "<70%", "<95%"], header
names = ["< 30%", "30–40%", "40–50%", "50–70%", "70–95%"]
identity = {}
for line in lines[1:]:
    cells = line.split(",")
    flags = [c == "1" for c in cells[1:]]
    identity[cells[0]] = names[flags.index(True)] if any(flags) else "≥ 95%"

manifest = json.load(open(os.path.join(dataset, "manifest.json")))
tasks = next(t["terms"] for t in manifest["benchmark"]["tasks"] if t["task"] == "go-bp")
ids = table("proteins", ["protein_id"]).column("protein_id").to_pylist()
rng = np.random.default_rng(5)
target = (rng.random((len(ids), len(tasks))) < 0.4).astype(np.float32)
pred = (0.5 * target + 0.8 * rng.random((len(ids), len(tasks)))).astype(np.float32)

t = Table(ids, tasks, pred, target, binary, work)
run, b = t.breakdown(url, dataset_id, "go-breakdown", {"split": "official"})
same = t.same


views = {v["by"]: v for v in b["breakdowns"]}
assert set(views) == {"go_depth", "length", "identity_to_train"}, (views.keys(), b["unavailable"])
depth_edges = {"depth 0–2": (0, 2), "depth 3–4": (3, 4), "depth 5–6": (5, 6), "depth 7–8": (7, 8),
               "depth ≥ 9": (9, 1 << 30)}
cols_seen = 0
for bucket in views["go_depth"]["buckets"]:
    if bucket["name"] == "unknown depth":
        cols = [j for j, t in enumerate(tasks) if t not in dag]
    else:
        lo, hi = depth_edges[bucket["name"]]
        cols = [j for j, t in enumerate(tasks) if t in dag and lo <= dag[t].depth <= hi]
    rows = [i for i in range(len(ids)) if target[i, cols].sum() > 0]
    same(bucket, rows, cols)
    cols_seen += len(cols)
assert cols_seen == len(tasks), (cols_seen, len(tasks))
assert any(x["name"] == "unknown depth" for x in views["go_depth"]["buckets"]), views["go_depth"]
group = {p: identity[p] if part_of[p] == "test" else part_of[p] for p in ids}
seen = 0
for bucket in views["identity_to_train"]["buckets"]:
    rows = [i for i in range(len(ids)) if group[ids[i]] == bucket["name"]]
    same(bucket, rows, list(range(len(tasks))))
    seen += len(rows)
assert seen == len(ids), (seen, len(ids))
assert len({x["name"] for x in views["identity_to_train"]["buckets"]} - {"train", "valid"}) >= 2, views
print(json.dumps({"run_id": run}))
print("ok")
