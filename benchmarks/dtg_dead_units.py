#!/usr/bin/python3
"""How many of DTG's generator hidden units are alive, in the PyTorch reference, during a study run.

    /usr/bin/python3 benchmarks/dtg_dead_units.py [--hierarchy super5] [--train-size 60000] [--seed 1]
        [--checks 0,50,100,200,446,892] [--probe 2000] [--threads 1]

Trains DTG exactly as benchmarks/torch_study.py does (same subset, dev split, initialisation,
batch order and cosine schedule) and, at each step count in --checks, prints for the feature and
the label generator how many of the 128 hidden ReLU units are positive on at least one of --probe
training examples.  A unit that is zero on all of them is dead there: its outgoing weights get no
gradient, so the generator works with fewer units than it has.  It also prints the generated
labels' mean entropy over its maximum log psi, and their information about the example beyond its
primary class (nats; 0 when every example of a class gets the same label), as
benchmarks/dtg_generators.cpp does for auxl.  The run stops at the last check.

Why: auxl's DTG generators lose most of their units early (README, "DTG-style joint data-task
generation"); this counts the same thing in the reference, directly, from the activations.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_study  # noqa: E402
from torch_reference import AUX, HIERARCHIES, block_softmax, set_threads  # noqa: E402


def alive_units(g_feat, g_label, x, y, primary_classes):
    """(alive feature-generator units, alive label-generator units) on the probe (x, y): hidden
    units whose ReLU output is positive for at least one row.  g_feat and g_label are
    torch_reference.dtg_step's generators: Sequential(Linear, ReLU, Linear)."""
    with torch.no_grad():
        inputs = torch.cat([x.flatten(1), F.one_hot(y, primary_classes).float()], dim=1)
        hidden_feat = g_feat[1](g_feat[0](inputs))
        x_gen = x.flatten(1) + g_feat[2](hidden_feat)
        hidden_label = g_label[1](g_label[0](x_gen))
        return int((hidden_feat > 0).any(dim=0).sum()), int((hidden_label > 0).any(dim=0).sum())


def label_measures(g_feat, g_label, x, y, primary_classes):
    """(mean per-example entropy of the generated label over its maximum log psi, the label's
    information about the example beyond its primary class in nats: the entropy of each primary
    class's mean label, weighted by the class's share, minus the mean per-example entropy), as
    benchmarks/dtg_generators.cpp measures them in auxl."""
    psi = AUX // primary_classes
    with torch.no_grad():
        flat = x.flatten(1)
        x_gen = flat + g_feat(torch.cat([flat, F.one_hot(y, primary_classes).float()], dim=1))
        labels = block_softmax(g_label(x_gen), y, psi).double()
        per_example = -(labels * torch.log(labels.clamp_min(1e-300))).sum(dim=1).mean().item()
        class_entropy = 0.0
        for p in range(primary_classes):
            rows = labels[y == p]
            if rows.shape[0] == 0:
                continue
            mean = rows.mean(dim=0)
            class_entropy += rows.shape[0] / labels.shape[0] * -(mean * torch.log(mean.clamp_min(1e-300))).sum().item()
        return per_example / math.log(psi), class_entropy - per_example


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hierarchy", default="super5", choices=sorted(HIERARCHIES))
    ap.add_argument("--train-size", type=int, default=60000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--checks", default="0,50,100,200,446,892", help="comma-separated step counts")
    ap.add_argument("--probe", type=int, default=2000, help="training examples the units are tested on")
    ap.add_argument("--epochs", type=int, default=20, help="the schedule's length (the study's 20)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=os.environ.get("AUXL_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    try:
        checks = sorted({int(c) for c in a.checks.split(",")})
    except ValueError:
        raise SystemExit(f"dtg_dead_units: --checks must be comma-separated step counts, not {a.checks!r}")
    if checks[0] < 0 or a.probe < 1:
        raise SystemExit("dtg_dead_units: --checks must be >= 0 and --probe >= 1")
    blas_threads = set_threads(a.threads)
    (train_x, train_fine), (test_x, test_fine) = torch_study.load_fashion_mnist(a.data)
    rows = torch_study.stratified_subset(train_fine.numpy(), a.train_size, np.random.default_rng(a.seed))
    x, fine = train_x[rows], train_fine[rows]
    to_primary = torch.tensor(HIERARCHIES[a.hierarchy])
    probe = torch.from_numpy(np.random.default_rng(a.seed + 2000).permutation(x.shape[0])[:a.probe])
    probe_x, probe_y = x[probe], to_primary[fine[probe]]
    primary_classes = len(set(HIERARCHIES[a.hierarchy]))
    print(f"# DTG generator units alive (of 128) on {probe.numel()} training examples: {a.hierarchy}, MLP, "
          f"n={a.train_size}, seed {a.seed}, torch {torch.__version__}, {a.threads} threads (OpenBLAS {blas_threads})")
    print("step,alive_feature_units,alive_label_units,label_entropy_share,label_information_nats", flush=True)

    def on_step(steps, step):
        if steps in checks:
            g_feat, g_label, _ = step.generators
            entropy, information = label_measures(g_feat, g_label, probe_x, probe_y, primary_classes)
            print(steps, *alive_units(g_feat, g_label, probe_x, probe_y, primary_classes), f"{entropy:.5f}", f"{information:.5f}",
                  sep=",", flush=True)
        return steps >= checks[-1]

    torch_study.train_one("dtg", "mlp", a.hierarchy, x, fine, test_x, test_fine, a.seed, a.epochs, 128, 0.05, 1.0,
                          on_step=on_step)


if __name__ == "__main__":
    main()
