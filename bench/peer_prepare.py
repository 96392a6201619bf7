#!/usr/bin/env python3
"""Python peer for `fusionprot prepare`, doing the same work the common way: gemmi parses each file
(first model, first conformer, polymer chains), numpy/scipy build the seven-relation graph of spec
section 2.2 (cKDTree for radius and KNN), pyarrow writes zstd Parquet. Single process, one core.
Used only by bench/prepare for comparison.

Usage: peer_prepare.py CORPUS_DIR OUT_DIR   -> prints a JSON line with counts and seconds
"""
import json
import os
import sys
import time

import gemmi
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial import cKDTree

EXTS = (".pdb", ".cif", ".ent", ".mmcif", ".pdb.gz", ".cif.gz", ".ent.gz", ".mmcif.gz")


def edges_for(pos, chain):
    n = len(pos)
    src, dst, rel = [], [], []
    chain = np.asarray(chain)
    idx = np.arange(n)
    for d in range(-2, 3):
        k = abs(d)
        r = idx[: n - k] if k else idx
        same = chain[r] == chain[r + k]
        r = r[same]
        if d < 0:
            src.append(r + k); dst.append(r)
        elif d == 0:
            src.append(r); dst.append(r)
        else:
            src.append(r); dst.append(r + k)
        rel.append(np.full(len(r), d + 2))
    tree = cKDTree(pos)
    for c, cand in enumerate(tree.query_ball_point(pos, r=10.0 - 1e-6)):
        cand = [j for j in sorted(cand) if j != c][:32]
        cand = np.array([j for j in cand if abs(j - c) >= 5], dtype=np.int64)
        src.append(cand); dst.append(np.full(len(cand), c)); rel.append(np.full(len(cand), 5))
    k = min(11, n)
    _, nn = tree.query(pos, k=k)
    nn = nn.reshape(n, k)
    for c in range(n):
        cand = np.array([j for j in nn[c] if j != c and abs(j - c) >= 5], dtype=np.int64)
        src.append(cand); dst.append(np.full(len(cand), c)); rel.append(np.full(len(cand), 6))
    return np.concatenate(src), np.concatenate(dst), np.concatenate(rel)


def main(corpus, out):
    start = time.perf_counter()
    files = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs if f.lower().endswith(EXTS)
    )
    prot, res, edg = {"protein_id": [], "sequence": []}, {"protein_id": [], "x": [], "y": [], "z": []}, {
        "protein_id": [], "src": [], "dst": [], "relation": []}
    n_res = n_edges = failed = 0
    for path in files:
        try:
            st = gemmi.read_structure(path)
        except Exception:
            failed += 1
            continue
        st.setup_entities()
        st.remove_alternative_conformations()
        entry = st.name or os.path.basename(path)
        for ch in st[0]:
            rows = [(r.name, r.find_atom("CA", "*")) for r in ch.get_polymer()]
            rows = [(name, a) for name, a in rows if a is not None]
            if not rows:
                continue
            pid = f"{entry}_{ch.name}"
            pos = np.array([[a.pos.x, a.pos.y, a.pos.z] for _, a in rows], dtype=np.float32)
            s, d, r = edges_for(pos, [ch.name] * len(rows))
            prot["protein_id"].append(pid)
            prot["sequence"].append(gemmi.one_letter_code([n for n, _ in rows]))
            res["protein_id"] += [pid] * len(rows)
            res["x"] += pos[:, 0].tolist(); res["y"] += pos[:, 1].tolist(); res["z"] += pos[:, 2].tolist()
            edg["protein_id"] += [pid] * len(s)
            edg["src"].append(s); edg["dst"].append(d); edg["relation"].append(r)
            n_res += len(rows)
            n_edges += len(s)
    os.makedirs(out, exist_ok=True)
    for k in ("src", "dst", "relation"):
        edg[k] = np.concatenate(edg[k]) if edg[k] else np.array([], dtype=np.int64)
    for name, cols in (("proteins", prot), ("residues", res), ("edges", edg)):
        pq.write_table(pa.table(cols), os.path.join(out, f"{name}.parquet"), compression="zstd")
    print(json.dumps({"files": len(files), "failed": failed, "proteins": len(prot["protein_id"]),
                      "residues": n_res, "edges": n_edges, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
