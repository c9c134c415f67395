#!/usr/bin/python3
"""auxl against PyTorch on the same machine, in one run: ms per training step of each composition,
MLP and CNN, 1 and 2 threads, alternating the implementations (A B C A B C ...) so that all see the
same machine state; min / median / max over the repeats, the ratio of medians, peak memory.
The implementations: auxl on OpenBLAS (side_by_side_auxl), auxl on Eigen's GEMM built for this
machine (side_by_side_auxl_eigen, when built) and PyTorch (benchmarks/torch_reference.py).

    /usr/bin/python3 benchmarks/side_by_side.py [--repeats 5] [--models mlp,cnn] [--threads 1,2]
                                                [--methods stl,human+equal,...] [--csv out.csv]

Needs build/benchmarks/side_by_side_auxl (cmake --build build --target side_by_side_auxl
side_by_side_auxl_eigen; --no-eigen leaves the second out) and
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
    ap.add_argument("--auxl-eigen", default=os.path.join(HERE, "..", "build", "benchmarks", "side_by_side_auxl_eigen"))
    ap.add_argument("--no-eigen", action="store_true", help="time only the OpenBLAS build of auxl")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement (MLP; the CNN uses a fifth)")
    ap.add_argument("--csv", default="")
    a = ap.parse_args()
    if not os.path.exists(a.auxl):
        sys.exit(f"side_by_side: {a.auxl} not found; build it with cmake --build build --target side_by_side_auxl")
    eigen = not a.no_eigen and os.path.exists(a.auxl_eigen)
    if not a.no_eigen and not eigen:
        print(f"side_by_side: {a.auxl_eigen} not found, timing the OpenBLAS build only "
              "(cmake --build build --target side_by_side_auxl_eigen)")
    rows, meta = [], {}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')} (left as the machine sets it); "
          # how long OpenBLAS's idle threads spin: it moves two-thread CNN steps (README, GEMM backend)
          f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', 'unset')}")
    for model in a.models.split(","):
        steps = a.steps if model == "mlp" else max(3, a.steps // 5)
        for threads in [int(t) for t in a.threads.split(",")]:
            for method in a.methods.split(","):
                impls = [("auxl", [a.auxl])] + ([("auxl-eigen", [a.auxl_eigen])] if eigen else []) + \
                        [("torch", [sys.executable, os.path.join(HERE, "torch_reference.py")])]
                times = {name: [] for name, _ in impls}
                mem = {name: 0.0 for name, _ in impls}
                cadence = CADENCE.get(method, 1)
                timed = -(-steps // cadence) * cadence
                common = ["--method", method, "--model", model, "--threads", str(threads), "--steps", str(timed)]
                for _ in range(a.repeats):
                    for impl, cmd in impls:
                        r = run(cmd + common, threads)
                        times[impl].append(r["ms_per_step"])
                        mem[impl] = max(mem[impl], r["peak_rss_mb"])
                        meta[impl] = r.get("blas", "") + (f", torch {r['torch']}" if "torch" in r else "")
                med = {impl: statistics.median(t) for impl, t in times.items()}
                row = {"model": model, "threads": threads, "method": method, "steps": timed}
                for impl, _ in impls:
                    key = impl.replace("-", "_")
                    row.update({f"{key}_min": min(times[impl]), f"{key}_median": med[impl], f"{key}_max": max(times[impl])})
                row["speedup"] = med["torch"] / med["auxl"]
                if eigen:
                    row["speedup_eigen"] = med["torch"] / med["auxl-eigen"]
                row.update({f"{impl.replace('-', '_')}_rss_mb": mem[impl] for impl, _ in impls})
                rows.append(row)
                line = f"{model:4} {threads}t {method:20}"
                for impl, _ in impls:
                    line += f" {impl} {med[impl]:8.2f} ms ({min(times[impl]):.2f}-{max(times[impl]):.2f})"
                line += f"   torch/auxl {row['speedup']:5.2f}x"
                if eigen:
                    line += f"  torch/auxl-eigen {row['speedup_eigen']:5.2f}x"
                line += "   peak RSS " + " / ".join(f"{mem[impl]:.0f}" for impl, _ in impls) + " MB"
                print(line, flush=True)
    alt = "/etc/alternatives/libblas.so.3-x86_64-linux-gnu"
    libblas = os.path.realpath(alt) if os.path.exists(alt) else "unknown"
    print(f"\nauxl: {meta.get('auxl', '')}" + (f"\nauxl-eigen: {meta.get('auxl-eigen', '')}" if eigen else "") +
          f"\ntorch: {meta.get('torch', '')}; its generic BLAS is libblas.so.3 -> {libblas}"
          " (Debian's alternatives; OpenBLAS when it points into openblas-pthread); convolutions go through oneDNN")
    print(f"batch 128, SGD momentum 0.9, cross-entropy; {a.repeats} repeats, libraries alternating; "
          "torch/auxl > 1 means auxl is faster; peak RSS in the column order")
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
