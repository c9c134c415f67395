#!/usr/bin/python3
"""Peak resident memory of one training epoch of each composition on Fashion-MNIST, auxl beside
PyTorch: what a training job needs, data included.

    /usr/bin/python3 benchmarks/epoch_memory.py [--demo build/examples/fashion_hierarchy]
        [--models mlp,cnn] [--methods stl,human+equal,...] [--hierarchy half2] [--train-size 6000]
        [--threads 1] [--csv out.csv]

Each measurement is a fresh process, the libraries alternating: auxl's demo
(examples/fashion_hierarchy) and the PyTorch study driver (benchmarks/torch_study.py), each
asked for one epoch of one composition with one seed.  Both drivers also train STL first (they
always add it, as the baseline), so a composition's process peaks at the larger of its two runs;
the "over STL" columns, a composition's peak less its library's STL-only peak, are what the
composition itself adds.  The peak is the child's own ru_maxrss, read with os.wait4 when it
exits: the resident high-water mark of the whole process, from start (data loading included) to
end (the test-set evaluation included).  Standard library only; needs Debian's python3-torch for
the PyTorch side (scripts/setup.sh --torch) and the Fashion-MNIST files (AUXL_FASHION_MNIST_DIR,
or Debian's dataset-fashion-mnist)."""
import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = ["stl", "human+equal", "human+cosine", "human+module_aware", "human+transference", "maxl+equal",
           "rl_aux+equal", "rl_aux_w+equal", "dtg"]


class MeasurementError(RuntimeError):
    """A child process failed: its command and the end of its output say why."""


def peak_of(cmd, env):
    """Runs cmd to completion; returns (peak resident MB of that process alone, seconds)."""
    with tempfile.TemporaryFile() as log:
        start = time.monotonic()
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        seconds = time.monotonic() - start
        if child.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
            raise MeasurementError(f"{' '.join(cmd)} exited with {child.returncode}:\n  " + "\n  ".join(tail))
    return usage.ru_maxrss / 1024.0, seconds  # Linux reports kilobytes


def commands(a, model, method, out):
    return {"auxl": [a.demo, "--hierarchy", a.hierarchy, "--model", model, "--train-size", str(a.train_size),
                       "--epochs", "1", "--seeds", "1", "--methods", method, "--threads", str(a.threads),
                       "--out", os.path.join(out, "auxl")],
              "torch": [a.python, a.torch_study, os.path.join(out, "torch"), "--sizes", str(a.train_size),
                        "--models", model, "--hierarchies", a.hierarchy, "--methods", method, "--seeds", "1",
                        "--epochs", "1", "--threads", str(a.threads)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", default=os.path.join(HERE, "..", "build", "examples", "fashion_hierarchy"))
    ap.add_argument("--torch-study", default=os.path.join(HERE, "torch_study.py"))
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs --torch-study")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--hierarchy", default="half2")
    ap.add_argument("--train-size", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default="")
    a = ap.parse_args()
    if not os.path.exists(a.demo):
        sys.exit(f"epoch_memory: {a.demo} not found; build it with cmake --build build --target fashion_hierarchy")
    if a.train_size <= 0 or a.threads <= 0:
        sys.exit("epoch_memory: --train-size and --threads must be positive")
    methods = a.methods.split(",")
    if "stl" in methods:  # the baseline first: the "over STL" columns need it
        methods.remove("stl")
    methods = ["stl"] + methods
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; "
          f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}")
    print(f"one epoch, {a.hierarchy}, {a.train_size} training examples, seed 1, {a.threads} thread(s); "
          "peak resident MB of each process (data, STL run and the composition's run)", flush=True)
    rows = []
    try:
        for model in a.models.split(","):
            baseline = {}
            for method in methods:
                with tempfile.TemporaryDirectory() as out:
                    row = {"model": model, "method": method}
                    for impl, cmd in commands(a, model, method, out).items():
                        row[f"{impl}_mb"], row[f"{impl}_seconds"] = peak_of(cmd, env)
                if method == "stl":
                    baseline = {impl: row[f"{impl}_mb"] for impl in ("auxl", "torch")}
                for impl in ("auxl", "torch"):
                    row[f"{impl}_over_stl_mb"] = row[f"{impl}_mb"] - baseline[impl]
                row["torch_over_auxl"] = row["torch_mb"] / row["auxl_mb"]
                rows.append(row)
                print(f"{model:4} {method:20} auxl {row['auxl_mb']:7.1f} MB ({row['auxl_over_stl_mb']:+6.1f} over STL,"
                      f" {row['auxl_seconds']:6.1f} s)   PyTorch {row['torch_mb']:7.1f} MB"
                      f" ({row['torch_over_stl_mb']:+6.1f}, {row['torch_seconds']:6.1f} s)"
                      f"   PyTorch / auxl {row['torch_over_auxl']:5.2f}x", flush=True)
    except MeasurementError as e:
        sys.exit(f"epoch_memory: {e}")
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
