"""bench/startup's timing loop: each command RUNS times per binary, wall time from fork to exit
(median, min) and peak RSS (os.wait4's ru_maxrss, this child's own), printed as one table."""
import os
import statistics
import subprocess
import sys
import time

work, runs, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
commands = [
    ("--version", ["--version"]),
    ("score GO-BP-sized", ["score", f"{work}/go-bp.parquet", "--json"]),
    ('query "SELECT 1"', ["query", "--db", f"{work}/t.db", "SELECT 1"]),
    ("show (sample)", ["show", f"{work}/sample"]),
]


def once(argv):
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{argv} failed ({status})")
    return wall, usage.ru_maxrss / 1024.0  # KiB -> MiB


names = ["after (this checkout)"] + ["before"] * (len(binaries) - 1)
results = {}
for name, binary in zip(names, binaries):
    for label, args in commands:
        once([binary] + args)  # warm the page cache
        samples = [once([binary] + args) for _ in range(runs)]
        walls = [w for w, _ in samples]
        results[(name, label)] = (
            statistics.median(walls),
            min(walls),
            max(r for _, r in samples),
        )

print(f"{'command':<22} {'binary':<22} {'median ms':>10} {'min ms':>8} {'peak MiB':>9} {'vs before':>10}")
for label, _ in commands:
    for name in dict.fromkeys(names):
        med, low, rss = results[(name, label)]
        ratio = ""
        if name != "before" and ("before", label) in results:
            ratio = f"{results[('before', label)][0] / med:9.1f}x"
        print(f"{label:<22} {name:<22} {med * 1e3:10.1f} {low * 1e3:8.1f} {rss:9.1f} {ratio:>10}")
print(f"{runs} runs each; wall time from fork to exit; peak RSS of the process itself")
