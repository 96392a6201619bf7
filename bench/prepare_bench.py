#!/usr/bin/env python3
"""Benchmark `fusionprot prepare` against a Python peer (gemmi + numpy/scipy + pyarrow,
bench/peer_prepare.py) on the same corpus, in one run, and print a table with the ratios.

The corpus is the real structure files of ../shared/data/real copied COPIES times with their ids
rewritten so that every copy is a distinct protein (no duplicate is skipped).
Also compares parse-only speed on the largest plain files (fusionprot's example parse_bench vs
gemmi.read_structure). Run through bench/prepare, which builds and sets up first.
"""
import gzip
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = os.path.join(ROOT, "..", "shared", "data", "real")
EXTS = (".pdb", ".cif", ".ent", ".mmcif", ".pdb.gz", ".cif.gz", ".ent.gz", ".mmcif.gz")


def rewrite(text, k):
    """Make copy k a distinct protein: ids that our CLI and gemmi would read are changed."""
    # PDB HEADER idCode (columns 63-66): a non-PDB-like id, so the (unique) file name is used.
    text = re.sub(r"^(HEADER.{56})(.{4})", lambda m: m.group(1) + "XXXX", text, flags=re.M)
    text = re.sub(r"^(DBREF .{20}UNP   )(.{8})", lambda m: m.group(1) + (m.group(2).strip()[:6] + f"{k:02d}").ljust(8), text, flags=re.M)
    text = re.sub(r"^_entry\.id\s+\S+", f"_entry.id copy{k:02d}", text, flags=re.M)
    return text


# Entries shipped in two formats (and the plain copy of the gzipped AlphaFold model): one of each
# is left out, so both sides see every protein once and their counts can be compared.
SECOND_COPIES = {"1A8O.cif", "1AMY.cif", "2XHE.cif", "1LCD.cif.gz", "3PWP.cif.gz", "AF-Q5VSL9-F1-model_v2.pdb"}


def make_corpus(dest, copies):
    files = sorted(f for f in os.listdir(REAL) if f.lower().endswith(EXTS) and f not in SECOND_COPIES)
    for k in range(copies):
        for f in files:
            src = os.path.join(REAL, f)
            gz = f.endswith(".gz")
            data = (gzip.open(src, "rb") if gz else open(src, "rb")).read().decode("latin-1")
            data = rewrite(data, k).encode("latin-1")
            base, ext = (f[:-3], ".gz") if gz else (f, "")
            stem, sext = os.path.splitext(base)
            name = f"{stem}_c{k:02d}{sext}{ext}"
            with open(os.path.join(dest, name), "wb") as out:
                out.write(gzip.compress(data, 6, mtime=0) if gz else data)
    return len(files) * copies


def timed(cmd, env=None):
    """Runs cmd; returns (stdout, wall seconds, peak RSS in MiB) of that child alone."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out}\n{err}")
    return out, wall, usage.ru_maxrss / 1024


def main():
    copies = int(os.environ.get("COPIES", "20"))
    fp = os.environ["FUSIONPROT_BIN"]
    parse_bench = os.path.join(os.path.dirname(fp), "examples", "parse_bench")
    work = tempfile.mkdtemp(prefix="fp-bench-")
    try:
        corpus = os.path.join(work, "corpus")
        os.makedirs(corpus)
        n_files = make_corpus(corpus, copies)
        corpus_mb = sum(os.path.getsize(os.path.join(corpus, f)) for f in os.listdir(corpus)) / 1e6
        rows = []
        counts = {}
        # This machine's timings vary by ±5% from run to run: each of ours is run RUNS times
        # (default 5) and the median wall time is reported, with the fastest beside it.
        runs = int(os.environ.get("RUNS", "5"))
        fastest = {}
        for jobs in (1, 2):
            out = os.path.join(work, f"ours{jobs}")
            walls, rsss = [], []
            for _ in range(runs):
                text, wall, rss = timed([fp, "prepare", corpus, "--out", out, "--jobs", str(jobs)])
                walls.append(wall)
                rsss.append(rss)
            wall = sorted(walls)[len(walls) // 2]
            fastest[jobs] = min(walls)
            m = json.load(open(os.path.join(out, "manifest.json")))["counts"]
            counts[jobs] = m
            rows.append((f"fusionprot prepare --jobs {jobs}", jobs, wall, max(rsss), m["proteins"], m["residues"], m["edges"]))
        text, wall, rss = timed([sys.executable, os.path.join(ROOT, "bench", "peer_prepare.py"), corpus, os.path.join(work, "peer")])
        peer = json.loads(text)
        rows.append(("python peer (gemmi+scipy+pyarrow)", 1, wall, rss, peer["proteins"], peer["residues"], peer["edges"]))

        # Parse only, on the largest plain files (decompressed text, so MB/s is of text).
        big = sorted((f for f in os.listdir(REAL) if f.endswith((".cif", ".pdb"))),
                     key=lambda f: -os.path.getsize(os.path.join(REAL, f)))[:8]
        paths = [os.path.join(REAL, f) for f in big]
        repeat = 10
        text, _, _ = timed([parse_bench, "--repeat", str(repeat)] + paths)
        ours_parse = json.loads(text)
        import gemmi
        t0 = time.perf_counter()
        for _ in range(repeat):
            for p in paths:
                gemmi.read_structure(p)
        gemmi_secs = time.perf_counter() - t0
        text_mb = ours_parse["bytes"] / 1e6

        print(f"\nbench/prepare: {n_files} files ({copies} copies of the 42 distinct files of shared/data/real, {corpus_mb:.0f} MB on disk)")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, gemmi {gemmi.__version__}")
        print(f"fusionprot: median of {runs} runs (fastest: --jobs 1 {fastest[1]:.2f} s = {n_files / fastest[1]:.0f} files/s, "
              f"--jobs 2 {fastest[2]:.2f} s = {n_files / fastest[2]:.0f} files/s); the peer: one run")
        print(f"{'run':36} {'threads':>7} {'wall s':>8} {'files/s':>8} {'files/s/core':>12} {'residues/s':>11} {'peak MiB':>9} {'proteins':>9} {'edges':>10}")
        for name, threads, wall, rss, prot, res, edges in rows:
            print(f"{name:36} {threads:>7} {wall:>8.2f} {n_files / wall:>8.1f} {n_files / wall / threads:>12.1f} {res / wall:>11.0f} {rss:>9.0f} {prot:>9} {edges:>10}")
        peer_wall = rows[2][2]
        print(f"\nratio per core (fusionprot --jobs 1 vs peer): {peer_wall / rows[0][2]:.1f}x")
        print(f"ratio whole machine (fusionprot --jobs 2 vs peer on 1 core): {peer_wall / rows[1][2]:.1f}x")
        print(f"parse only, {len(paths)} largest plain files x {repeat}: fusionprot {text_mb / ours_parse['seconds']:.0f} MB/s, "
              f"gemmi {text_mb / gemmi_secs:.0f} MB/s (1 core each), ratio {gemmi_secs / ours_parse['seconds']:.1f}x")
        same = counts[1]["proteins"] == peer["proteins"] and counts[1]["edges"] == peer["edges"]
        print(f"same proteins and edges as the peer: {'yes' if same else 'NO'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
