#!/usr/bin/env python3
"""Independent peer for the residue graph of spec section 2.2, written from the spec (not from the
Rust code) with numpy. Reads DATASET/residues and DATASET/edges (pyarrow), rebuilds every
protein's edges and compares them with the stored ones, edge for edge.

Spec rules reproduced here:
  relations 0-4: sequential offsets d = -2..2, relation d+2, edge node_out = node_in + d,
                 only within one chain (self-loops are relation 2);
  relation 5:    torch_cluster radius_graph(r=10, loop=False, max_num_neighbors=32) with the GPU
                 kernel's semantics: for each centre, candidates scanned in index order, squared
                 distance (float32, summed x, y, z) < 100, at most 32 kept; then TorchDrug drops
                 pairs with |i-j| < 5 and pairs whose distance norm < 1e-10; edge neighbour -> centre;
  relation 6:    knn_graph(k=10, loop=False): the 11 nearest including the centre (ties to the lower
                 index), centre removed, then the same two filters; edge neighbour -> centre.

Usage: graph_peer.py DATASET   -> prints a JSON report; exit 1 on any difference.
"""
import json
import sys

import numpy as np
import pyarrow.parquet as pq


def build(pos, chain):
    n = len(pos)
    edges = set()
    for d in range(-2, 3):
        rel = d + 2
        for r in range(n):
            j = r + abs(d)
            if j >= n or chain[r] != chain[j]:
                continue
            if d < 0:
                edges.add((j, r, rel))
            elif d == 0:
                edges.add((r, r, rel))
            else:
                edges.add((r, j, rel))
    if n == 0:
        return edges
    diff = pos[None, :, :] - pos[:, None, :]          # [centre, j, 3] float32
    sq = diff * diff
    d2 = (sq[:, :, 0] + sq[:, :, 1]) + sq[:, :, 2]     # same summation order, float32
    norm = np.sqrt(d2)
    idx = np.arange(n)
    for c in range(n):
        cand = [j for j in range(n) if j != c and d2[c, j] < np.float32(100.0)][:32]
        for j in cand:
            if abs(j - c) >= 5 and not norm[c, j] < 1e-10:
                edges.add((j, c, 5))
        order = np.lexsort((idx, d2[c]))[: min(11, n)]
        for j in order:
            j = int(j)
            if j != c and abs(j - c) >= 5 and not norm[c, j] < 1e-10:
                edges.add((j, c, 6))
    return edges


def main(dataset):
    res = pq.read_table(f"{dataset}/residues").to_pydict()
    edg = pq.read_table(f"{dataset}/edges").to_pydict()
    by_protein = {}
    for i, pid in enumerate(res["protein_id"]):
        by_protein.setdefault(pid, []).append(i)
    ours = {}
    for i, pid in enumerate(edg["protein_id"]):
        ours.setdefault(pid, []).append((edg["src"][i], edg["dst"][i], edg["relation"][i]))
    report = {"proteins": 0, "edges_ours": 0, "edges_peer": 0, "duplicated_edges": 0, "mismatches": []}
    for pid, rows in by_protein.items():
        assert [res["residue_index"][i] for i in rows] == list(range(len(rows))), pid
        pos = np.array([[res["x"][i], res["y"][i], res["z"][i]] for i in rows], dtype=np.float32)
        chain = [res["chain_id"][i] for i in rows]
        peer = build(pos, chain)
        got_list = ours.get(pid, [])
        got = set(got_list)
        report["proteins"] += 1
        report["edges_ours"] += len(got_list)
        report["edges_peer"] += len(peer)
        report["duplicated_edges"] += len(got_list) - len(got)
        if got != peer:
            report["mismatches"].append({
                "protein_id": pid,
                "only_ours": sorted(got - peer)[:10],
                "only_peer": sorted(peer - got)[:10],
                "n_only_ours": len(got - peer),
                "n_only_peer": len(peer - got),
            })
    extra = set(ours) - set(by_protein)
    if extra:
        report["mismatches"].append({"edges_without_residues": sorted(extra)[:10]})
    print(json.dumps(report))
    return 1 if report["mismatches"] or report["duplicated_edges"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
