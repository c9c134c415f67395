#!/usr/bin/python3
"""auxl against PyTorch on the same machine, in one run: ms per training step of each composition,
MLP and CNN, 1 and 2 threads, alternating the two libraries (A B A B ...) so that both see the
same machine state; min / median / max over the repeats, the ratio of medians, peak memory.

    /usr/bin/python3 benchmarks/side_by_side.py [--repeats 5] [--models mlp,cnn] [--threads 1,2]
                                                [--methods stl,human+equal,...] [--csv out.csv]

Needs build/benchmarks/side_by_side_auxl (cmake --build build --target side_by_side_auxl) and
Debian's python3-torch (scripts/setup.sh --torch).  Each measurement is a fresh process:
5 warm-up steps, then --steps timed steps (a fifth for the CNN), rounded up to a multiple of the
method's cadence (CADENCE below) so periodic work is counted equally for both libraries."""
import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# Methods with periodic extra work: RL-AUX's PPO update every 4 batches, module-aware's upper
# level every 20 steps.  Timing a multiple of that many steps gives both libraries the same number
# of them whatever step they start at (auxl's harness also runs one step installing the dev set).
CADENCE = {"rl_aux+equal": 4, "rl_aux_w+equal": 4, "human+module_aware": 20}
METHODS = ["stl", "human+equal", "human+cosine", "human+module_aware", "human+transference", "maxl+equal",
           "rl_aux+equal", "rl_aux_w+equal", "dtg"]


def run(cmd, threads):
    # Both libraries call the same OpenBLAS: pin its pool (and OpenMP's, which PyTorch's own
    # kernels use) to the thread count under test, or PyTorch's BLAS calls use every core.
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()
    return json.loads(out[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--auxl", default=os.path.join(HERE, "..", "build", "benchmarks", "side_by_side_auxl"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement (MLP; the CNN uses a fifth)")
    ap.add_argument("--csv", default="")
    a = ap.parse_args()
    if not os.path.exists(a.auxl):
        sys.exit(f"side_by_side: {a.auxl} not found; build it with cmake --build build --target side_by_side_auxl")
    rows, meta = [], {}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')} (left as the machine sets it)")
    for model in a.models.split(","):
        steps = a.steps if model == "mlp" else max(3, a.steps // 5)
        for threads in [int(t) for t in a.threads.split(",")]:
            for method in a.methods.split(","):
                times = {"auxl": [], "torch": []}
                mem = {"auxl": 0.0, "torch": 0.0}
                cadence = CADENCE.get(method, 1)
                timed = -(-steps // cadence) * cadence
                common = ["--method", method, "--model", model, "--threads", str(threads), "--steps", str(timed)]
                for _ in range(a.repeats):
                    for impl, cmd in (("auxl", [a.auxl] + common),
                                      ("torch", [sys.executable, os.path.join(HERE, "torch_reference.py")] + common)):
                        r = run(cmd, threads)
                        times[impl].append(r["ms_per_step"])
                        mem[impl] = max(mem[impl], r["peak_rss_mb"])
                        meta[impl] = r.get("blas", "") + (f", torch {r['torch']}" if "torch" in r else "")
                ours, theirs = statistics.median(times["auxl"]), statistics.median(times["torch"])
                row = {"model": model, "threads": threads, "method": method, "steps": timed,
                       "auxl_min": min(times["auxl"]), "auxl_median": ours, "auxl_max": max(times["auxl"]),
                       "torch_min": min(times["torch"]), "torch_median": theirs, "torch_max": max(times["torch"]),
                       "speedup": theirs / ours, "auxl_rss_mb": mem["auxl"], "torch_rss_mb": mem["torch"]}
                rows.append(row)
                print(f"{model:4} {threads}t {method:20} auxl {ours:8.2f} ms ({row['auxl_min']:.2f}-{row['auxl_max']:.2f})   "
                      f"torch {theirs:8.2f} ms ({row['torch_min']:.2f}-{row['torch_max']:.2f})   "
                      f"torch/auxl {row['speedup']:5.2f}x   peak RSS {mem['auxl']:.0f} / {mem['torch']:.0f} MB", flush=True)
    alt = "/etc/alternatives/libblas.so.3-x86_64-linux-gnu"
    libblas = os.path.realpath(alt) if os.path.exists(alt) else "unknown"
    print(f"\nauxl: {meta.get('auxl', '')}\ntorch: {meta.get('torch', '')}; its generic BLAS is libblas.so.3 -> {libblas}"
          " (Debian's alternatives; OpenBLAS when it points into openblas-pthread); convolutions go through oneDNN")
    print(f"batch 128, SGD momentum 0.9, cross-entropy; {a.repeats} repeats, libraries alternating; "
          "torch/auxl > 1 means auxl is faster")
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
