#!/usr/bin/python3
"""PyTorch accuracies for the learning-quality study: the Fashion-MNIST demo's protocol, in
idiomatic PyTorch (the models and per-step methods of benchmarks/torch_reference.py).

    /usr/bin/python3 benchmarks/torch_study.py OUT_DIR [--grid small|full|report] [--seeds 3] [--threads 2]

For every (primary task, training-set size, model) of the grid it writes
OUT_DIR/<hierarchy>_<model>_n<N>_torch/summary_<hierarchy>_<model>.csv in the demo's format
(method, runs, diverged, accuracy mean/std, paired difference to STL ± its standard error,
seconds per epoch, ms per step, and for the dev-set methods the paired difference to stl@dev) and runs_<hierarchy>_<model>.csv (one accuracy per seed).
Until a setting's last run finishes, partial_runs_<hierarchy>_<model>.csv in its directory lists
the accuracies of the runs this command has finished so far (with --add, the added methods' runs),
so a command that is stopped for good leaves them; scripts/make_results.py reads it too.
scripts/make_results.py puts them beside auxl's rows.

Protocol (the demo's, examples/fashion_hierarchy.cpp): a stratified subset of the training set
per seed; pixels in [0, 1]; torch.nn's default initialisation; SGD lr 0.05, momentum 0.9, weight
decay 5e-4, cosine annealing per epoch to 0 over 20 epochs, batch 128 (last batch kept);
auxiliary weight 1 (--aux-weight W: the weight sweep, written to
OUT_DIR/sweep_<hierarchy>_<model>_n<N>_w<W>_torch as the demo's sweep), plain cross-entropy;
every method of a seed starts from the same initialisation and sees the same batch order
(module-aware, RL-AUX and DTG train on 95 % of the subset and keep 5 %, stratified by fine class,
as their dev set, as auxl's trainer does; stl@dev is STL on that 95 % part, their fair baseline); scored on the full 10,000-image test set after
the last epoch.  The subsets and initialisations are drawn by PyTorch/NumPy, not by auxl's
generator, so the two libraries' runs are independent samples of the same protocol: compare
them with unpaired standard errors.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import study_csv  # noqa: E402
from idx_reader import IMAGES, LABELS, read_idx  # noqa: E402
from torch_reference import HIERARCHIES, DevRows, blas_kernel, make_step, restore_state, set_threads, state_of  # noqa: E402

GRIDS = {
    "small": {"sizes": [300, 1000, 6000], "models": ["mlp"],
              "methods": ["stl", "human+equal", "human+cosine", "maxl+equal"]},
    "full": {"sizes": [300, 1000, 6000, 60000], "models": ["mlp", "cnn"],
             "methods": ["stl", "stl@dev", "human+equal", "human+cosine", "human+module_aware", "human+transference",
                         "maxl+equal", "rl_aux+equal", "rl_aux_w+equal", "dtg"]},
}
FOUR = ["stl", "human+equal", "human+cosine", "maxl+equal"]


def report_settings(hierarchy, seeds):
    """The committed docs/study (benchmarks/study.sh's 'report' grid): (model, n, methods, seeds).
    super5 at 300 examples has 8 seeds; the extra-seed directories are separate commands."""
    every = GRIDS["full"]["methods"]
    return [("mlp", 300, every, 8 if hierarchy == "super5" else seeds), ("mlp", 1000, every, seeds),
            ("mlp", 6000, every, seeds), ("mlp", 60000, FOUR, seeds),
            ("cnn", 300, every, seeds), ("cnn", 1000, FOUR, seeds)]


# Methods with an upper level or a reward on held-out data: like auxl's trainer (dev_fraction
# 0.05), they train on 95 % of the subset and use the rest, stratified by fine class, as the dev set.
NEEDS_DEV = {"human+module_aware", "rl_aux+equal", "rl_aux_w+equal", "dtg"}
DEV_FRACTION = 0.05
# STL on the same 95 % part: the dev-set methods' fair baseline (auxl's demo has it too).
STL_DEV = "stl@dev"


def load_fashion_mnist(directory):
    def part(name):
        try:
            images = read_idx(os.path.join(directory, f"{name}-images-idx3-ubyte.gz"), IMAGES)
            labels = read_idx(os.path.join(directory, f"{name}-labels-idx1-ubyte.gz"), LABELS)
        except ValueError as e:
            raise SystemExit(f"torch_study: {e}") from e
        if images.shape[0] != labels.shape[0]:
            raise SystemExit(f"torch_study: {name}: {images.shape[0]} images but {labels.shape[0]} labels")
        return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
    return part("train"), part("t10k")


def stratified_subset(labels, n, gen):
    """n rows with the 10 classes as equally represented as n allows (auxl's rule), chosen at random."""
    picked = []
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        want = n // 10 + (1 if c < n % 10 else 0)
        if want > rows.size:
            raise SystemExit(f"torch_study: class {c} has {rows.size} examples, {want} needed")
        picked.append(gen.permutation(rows)[:want])
    return np.concatenate(picked)


def dev_split(fine, fraction, gen):
    """(kept rows, dev rows): round(fraction x n_c) rows of every fine class c held out (auxl's
    data::stratified_split)."""
    kept, held = [], []
    for c in range(10):
        rows = gen.permutation(np.flatnonzero(fine == c))
        h = int(rows.size * fraction + 0.5)
        held.append(rows[:h])
        kept.append(rows[h:])
    return np.concatenate(kept), np.concatenate(held)


class TimeLimitReached(Exception):
    """--time-limit stopped a run; its state file holds where (main() exits with code 75)."""


def save_atomically(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write keeps the previous state file


def train_one(method, model, hierarchy, x, fine, test_x, test_fine, seed, epochs, batch, lr, aux_weight,
              dtg_follow_schedule=False, on_step=None, state_path=None, deadline=None):
    """One run of the protocol; returns its accuracy, divergence flag and timings.  on_step, for
    diagnostics (benchmarks/dtg_dead_units.py): called with (steps done, the step function) before
    the first step and after each one; returning True ends the run there.
    state_path (--resume): the run's state is saved there after every epoch, and a run whose file
    exists continues from it bit for bit: network, optimizer, schedule, the step's own state (MAXL's
    generator, RL-AUX's policy and rollout, DTG's generators, module-aware's importances), the dev
    rows' cursor and generator, the batch-order generator and torch's global generator (RL-AUX's
    draws).  deadline (time.time() seconds, --time-limit): past it, the run saves where it stands,
    mid-epoch included, and raises TimeLimitReached."""
    to_primary = torch.tensor(HIERARCHIES[hierarchy])
    dev = None
    if method in NEEDS_DEV or method == STL_DEV:
        kept, held = dev_split(fine.numpy(), DEV_FRACTION, np.random.default_rng(seed + 1000))
        if held.size == 0:
            raise SystemExit(f"torch_study: the dev split of {x.shape[0]} examples is empty")
        if method != STL_DEV:
            dev = DevRows(x[held], to_primary[fine[held]], seed)
        x, fine = x[kept], fine[kept]
    torch.manual_seed(seed)  # the same initialisation for every method of this seed
    net, opt, step = make_step("stl" if method == STL_DEV else method, model, primary_classes=len(set(HIERARCHIES[hierarchy])), lr=lr,
                               weight_decay=5e-4, aux_weight=aux_weight, dev=dev, dtg_follow_schedule=dtg_follow_schedule)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=0.0)
    order = torch.Generator().manual_seed(seed)  # the same batch order for every method
    y = to_primary[fine]
    stateful = dict(getattr(step, "stateful", {}))
    if dev is not None:
        stateful["dev_rows"] = dev
    identity = {"method": method, "model": model, "hierarchy": hierarchy, "seed": seed, "rows": int(x.shape[0]),
                "epochs": epochs, "batch": batch, "lr": lr, "aux_weight": aux_weight}
    epoch, first_row, perm, steps, earlier_seconds = 0, 0, None, 0, 0.0
    if state_path is not None and os.path.exists(state_path):
        try:
            saved = torch.load(state_path)
        except Exception as e:  # a truncated or foreign file: say which, never a bare traceback
            raise SystemExit(f"torch_study --resume: cannot read {state_path}: {e}") from None
        if not isinstance(saved, dict) or saved.get("identity") != identity:
            raise SystemExit(f"torch_study --resume: {state_path} is the state of another run: "
                             f"{saved.get('identity') if isinstance(saved, dict) else type(saved).__name__}, not {identity}")
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        order.set_state(saved["order"])
        torch.set_rng_state(saved["torch_rng"])
        for name, obj in stateful.items():
            restore_state(obj, saved["stateful"][name])
        epoch, first_row, perm, steps, earlier_seconds = (saved[k] for k in ("epoch", "first_row", "perm", "steps", "seconds"))
        print(f"  resumed {method} seed {seed} at epoch {epoch}, step {steps} ({os.path.basename(state_path)})", flush=True)
    start = time.perf_counter()

    def save(epoch, first_row, perm):
        save_atomically({"identity": identity, "net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "order": order.get_state(), "torch_rng": torch.get_rng_state(),
                         "stateful": {name: state_of(obj) for name, obj in stateful.items()}, "epoch": epoch,
                         "first_row": first_row, "perm": perm, "steps": steps,
                         "seconds": earlier_seconds + time.perf_counter() - start}, state_path)

    stop = on_step is not None and on_step(0, step)
    while epoch < epochs and not stop:
        if perm is None:
            perm = torch.randperm(x.shape[0], generator=order)
        for b in range(first_row, x.shape[0], batch):
            idx = perm[b:b + batch]
            step(x[idx], y[idx], fine[idx])
            steps += 1
            if on_step is not None and on_step(steps, step):
                stop = True
                break
            if deadline is not None and time.time() >= deadline and b + batch < x.shape[0]:
                save(epoch, b + batch, perm)
                raise TimeLimitReached(f"{method} seed {seed} at epoch {epoch}, step {steps}")
        if stop:
            break
        sched.step()
        epoch, first_row, perm = epoch + 1, 0, None
        if state_path is not None:
            save(epoch, 0, None)
        if deadline is not None and time.time() >= deadline and epoch < epochs:
            raise TimeLimitReached(f"{method} seed {seed} at epoch {epoch}, step {steps}")
    seconds = earlier_seconds + time.perf_counter() - start
    with torch.no_grad():
        correct = 0
        for b in range(0, test_x.shape[0], 1000):
            p, _ = net(test_x[b:b + 1000])
            correct += (p.argmax(dim=1) == to_primary[test_fine[b:b + 1000]]).sum().item()
        finite = all(torch.isfinite(prm).all().item() for prm in net.parameters())
    return {"accuracy": correct / test_x.shape[0], "diverged": not finite,
            "seconds_per_epoch": seconds / epochs, "ms_per_step": 1000 * seconds / max(steps, 1)}


def code_id():
    """The code the runs use: a hash of this program and the modules it imports from benchmarks/
    (the PyTorch reference's methods, the CSV and IDX readers), so any edit there changes it."""
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("torch_study.py", "torch_reference.py", "study_csv.py", "idx_reader.py"):
        with open(os.path.join(here, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return f"torch_study sources {digest.hexdigest()[:12]}"


def claim_resume_dir(directory, numerics, accept_code_change=False):
    """Creates DIR/config.json, or refuses a --resume DIR whose runs were made with other numbers or,
    unless accept_code_change, by other code.  config.json's "code" lists every code id that ran
    there; the last must be this one's (accept_code_change appends it)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "config.json")

    def kernel_change_hint(theirs, mine):
        # The usual refusal after moving to another machine: only OpenBLAS's kernel differs.
        # Kernels round differently, so a run finishes on the kernel it began with.
        if theirs.get("kernel") == mine.get("kernel") or "no OpenBLAS" in (theirs.get("kernel"), mine.get("kernel")) \
                or {k: v for k, v in theirs.items() if k != "kernel"} != {k: v for k, v in mine.items() if k != "kernel"}:
            return ""
        return (f"\nonly OpenBLAS's kernel differs (its runs: {theirs['kernel']}, this process: {mine.get('kernel')}); "
                "kernels round differently, so a run must finish on the kernel it began with: to continue these runs "
                f"here, run this command with OPENBLAS_CORETYPE={theirs['kernel']} (on a CPU with the instructions that "
                "kernel needs)")
    code = code_id()

    def write(config):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=1, sort_keys=True)
        os.replace(tmp, path)

    if not os.path.exists(path):
        write({**numerics, "code": [code]})
        return
    try:
        with open(path) as f:
            theirs = json.load(f)
        codes = theirs.pop("code", [])
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise ValueError('"code" is not a list of code ids')
    except (OSError, ValueError) as e:
        raise SystemExit(f"torch_study --resume: cannot read {path}: {e}") from None
    if theirs != numerics:
        raise SystemExit(f"torch_study --resume: {directory} holds runs of another configuration:\n  its config.json: "
                         f"{json.dumps(theirs, sort_keys=True)}\n  this command:     {json.dumps(numerics, sort_keys=True)}\n"
                         "use another directory, or the settings it was made with" + kernel_change_hint(theirs, numerics))
    if codes and codes[-1] == code:
        return
    last = codes[-1] if codes else "(not recorded: made before code ids were recorded)"
    if not accept_code_change:
        raise SystemExit(f"torch_study --resume: {directory} holds runs made by other code;\n  its runs:     {last}\n"
                         f"  this program: {code}\ncontinue them with the code that made them, use another directory, "
                         "or pass --accept-code-change to let this code continue them (their numbers then mix two codes)")
    write({**numerics, "code": codes + [code]})
    print(f"--accept-code-change: continuing runs made by {last} with {code}", flush=True)


def read_run_record(path):
    """A finished run's result as train_one returned it; every field checked."""
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"torch_study --resume: cannot read the run record {path}: {e}") from None
    ok = isinstance(r, dict) and isinstance(r.get("diverged"), bool) and all(
        isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) for k in ("accuracy", "seconds_per_epoch", "ms_per_step"))
    if not ok or not 0 <= r["accuracy"] <= 1:
        raise SystemExit(f"torch_study --resume: {path} is not a run record (accuracy in [0, 1], diverged, "
                         f"seconds_per_epoch, ms_per_step): {r!r}")
    return r


def write_run_record(path, r):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({k: r[k] for k in ("accuracy", "diverged", "seconds_per_epoch", "ms_per_step")}, f)
    os.replace(tmp, path)


def paired_difference(runs, base):
    """(mean, standard error) of the accuracy differences in points, paired by seed."""
    base_by_seed = {r["seed"]: r["accuracy"] for r in base if not r["diverged"]}
    diff = [100 * (r["accuracy"] - base_by_seed[r["seed"]]) for r in runs if not r["diverged"] and r["seed"] in base_by_seed]
    if not diff:
        return "", ""
    return statistics.mean(diff), statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0


def read_finished(directory, hierarchy, model):
    """The runs of a finished setting as write_summary takes them (accuracies from the runs CSV,
    each method's mean timings from the summary; diverged runs as placeholders).  Every field is
    checked (study_csv): a truncated or foreign CSV stops the run before any training."""
    summary_path = os.path.join(directory, f"summary_{hierarchy}_{model}.csv")
    runs_path = os.path.join(directory, f"runs_{hierarchy}_{model}.csv")
    try:
        summary = study_csv.read_summary(summary_path)
        accuracies = study_csv.read_runs(runs_path)
        study_csv.check_runs_match_summary(summary_path, summary, runs_path, accuracies)
        for m, row in summary.items():
            if int(row["runs"]) > int(row["diverged"]) and "" in (row["seconds_per_epoch"].strip(), row["ms_per_step"].strip()):
                raise study_csv.StudyCsvError(f"{summary_path}: method {m} has finished runs but no timings")
    except study_csv.StudyCsvError as e:
        raise SystemExit(f"torch_study --add: cannot extend the finished setting: {e}") from None
    runs = {}
    for m, row in summary.items():
        by_seed = accuracies.get(m, {})
        runs[m] = [{"seed": seed, "accuracy": acc / 100, "diverged": False,
                    "seconds_per_epoch": float(row["seconds_per_epoch"]), "ms_per_step": float(row["ms_per_step"])}
                   for seed, acc in sorted(by_seed.items())]
        runs[m] += [{"seed": None, "accuracy": 0.0, "diverged": True}] * int(row["diverged"])
    return runs


def accuracy_percent(fraction):
    """A test accuracy in percent without the binary noise of the *100 (95.89999999999999 -> 95.9).
    Ten decimals keep every digit a test set of any size distinguishes."""
    return round(100 * fraction, 10)


def write_summary(directory, hierarchy, model, methods, runs):
    os.makedirs(directory, exist_ok=True)
    rows = []
    for m in methods:
        ok = [r for r in runs[m] if not r["diverged"]]
        acc = [100 * r["accuracy"] for r in ok]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        delta, se = (0.0, 0.0) if m == "stl" else paired_difference(runs[m], runs["stl"])
        # the dev-set methods against STL on the same 95 % part, when it ran
        delta_dev, se_dev = paired_difference(runs[m], runs[STL_DEV]) if m in NEEDS_DEV and STL_DEV in runs else ("", "")
        rows.append([m, len(runs[m]), len(runs[m]) - len(ok), statistics.mean(acc) if acc else "", sd, delta, se,
                     statistics.mean(r["seconds_per_epoch"] for r in ok) if ok else "",
                     statistics.mean(r["ms_per_step"] for r in ok) if ok else "", delta_dev, se_dev])
    write_csv(directory, f"summary_{hierarchy}_{model}.csv",
              ["method", "runs", "diverged", "accuracy_mean", "accuracy_std", "delta_vs_stl", "delta_se",
               "seconds_per_epoch", "ms_per_step", "delta_vs_stl_dev", "delta_dev_se"], rows)
    write_csv(directory, f"runs_{hierarchy}_{model}.csv", *runs_table(methods, runs))
    partial = os.path.join(directory, f"partial_runs_{hierarchy}_{model}.csv")
    if os.path.exists(partial):
        os.remove(partial)  # the runs CSV now holds them all


def runs_table(methods, runs):
    """The runs CSV's header and rows: each finished run's test accuracy, method by method."""
    return ["method", "seed", "accuracy"], [[m, r["seed"], accuracy_percent(r["accuracy"])]
                                            for m in methods for r in runs.get(m, []) if not r["diverged"]]


def write_csv(directory, name, header, body):
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(body)
    os.replace(tmp, os.path.join(directory, name))  # no half-written CSV survives a kill


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--grid", default="small", choices=sorted(GRIDS) + ["report"],
                    help="report: the committed docs/study, as benchmarks/study.sh's 'report' grid")
    ap.add_argument("--hierarchies", default="half2,parity2,super5")
    ap.add_argument("--sizes", help="comma-separated training-set sizes (default: the grid's)")
    ap.add_argument("--methods", help="comma-separated (default: the grid's)")
    ap.add_argument("--models", help="comma-separated, mlp and/or cnn (default: the grid's)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=1, help="seeds run from here (the demo's --seed)")
    ap.add_argument("--add", action="store_true",
                    help="in a finished setting, run only the methods it lacks (e.g. stl@dev) and rewrite its CSVs")
    ap.add_argument("--suffix", default="", help="appended to each setting's directory name (e.g. _seeds9-16)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--aux-weight", type=float, default=1.0,
                    help="auxiliary weight lambda; other than 1 writes sweep_<h>_<model>_n<N>_w<W>_torch")
    ap.add_argument("--dtg-follow-schedule", action="store_true",
                    help="DTG's generator rates anneal with the network's (the demo's --dtg-follow-schedule)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blas-threads", type=int,
                    help="OpenBLAS's threads (default: --threads).  The runs recorded before 2026-12-03T09:35Z "
                         "left OpenBLAS at its default of every core: --blas-threads 2 repeats them on a 2-core machine")
    ap.add_argument("--resume", metavar="DIR",
                    help="keep each run's state in DIR (after every epoch) and each finished run's result: the same "
                         "command again skips the finished runs and continues an interrupted one bit for bit")
    ap.add_argument("--accept-code-change", action="store_true",
                    help="continue --resume state that other code made (DIR/config.json's \"code\" lists every code "
                         "that ran there; without this flag a different one is refused)")
    ap.add_argument("--time-limit", type=float, metavar="S",
                    help="stop after S seconds (needs --resume): the running run saves where it stands, exit code 75; "
                         "the same command continues it (0: after every step)")
    ap.add_argument("--data", default=os.environ.get("AUXL_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    if a.time_limit is not None and not (math.isfinite(a.time_limit) and a.time_limit >= 0):
        raise SystemExit(f"torch_study: --time-limit {a.time_limit} is not a number of seconds >= 0")
    if a.time_limit is not None and not a.resume:
        raise SystemExit("torch_study: --time-limit needs --resume DIR (where the stopped run's state goes)")
    deadline = time.time() + a.time_limit if a.time_limit is not None else None
    blas_threads = set_threads(a.threads, a.blas_threads)
    hierarchies = a.hierarchies.split(",")
    if a.grid == "report":
        plan = [(model, h, n, methods, seeds) for h in hierarchies for model, n, methods, seeds in report_settings(h, a.seeds)]
    else:
        grid = GRIDS[a.grid]
        sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else grid["sizes"]
        methods = a.methods.split(",") if a.methods else grid["methods"]
        plan = [(model, h, n, methods, a.seeds) for model in (a.models.split(",") if a.models else grid["models"])
                for h in hierarchies for n in sizes]
    plan = [(model, h, n, methods if "stl" in methods else ["stl"] + methods, seeds) for model, h, n, methods, seeds in plan]
    if not (math.isfinite(a.aux_weight) and a.aux_weight >= 0):
        raise SystemExit(f"torch_study: --aux-weight {a.aux_weight} is not a finite weight >= 0")

    # --dtg-follow-schedule runs a variant of DTG: its directories are tagged so that
    # scripts/make_results.py never mixes them into the study's dtg rows.
    variant = "_dtgfollow" if a.dtg_follow_schedule else ""

    def directory_of(model, hierarchy, n):
        if a.aux_weight != 1.0:
            return os.path.join(a.out, f"sweep_{hierarchy}_{model}_n{n}_w{a.aux_weight:g}{variant}{a.suffix}_torch")
        return os.path.join(a.out, f"{hierarchy}_{model}_n{n}{variant}{a.suffix}_torch")

    # The finished settings --add extends are read (and checked) before anything is trained.
    finished = {}
    for model, hierarchy, n, methods, seeds in plan:
        directory = directory_of(model, hierarchy, n)
        if os.path.exists(os.path.join(directory, f"summary_{hierarchy}_{model}.csv")):
            finished[directory] = read_finished(directory, hierarchy, model) if a.add else None
    if a.resume:
        # The settings that change a run's numbers (kernels round differently: the kernel too).
        claim_resume_dir(a.resume, {"epochs": a.epochs, "batch": a.batch, "lr": a.lr, "aux_weight": a.aux_weight,
                                    "dtg_follow_schedule": a.dtg_follow_schedule, "threads": a.threads,
                                    "blas_threads": blas_threads, "kernel": blas_kernel(), "torch": torch.__version__}, a.accept_code_change)
    (train_x, train_fine), (test_x, test_fine) = load_fashion_mnist(a.data)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "README.txt"), "a") as f:
        f.write(f"# torch_study {' '.join(sys.argv[1:])} started {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, "
                f"torch {torch.__version__}, {a.threads} threads (OpenBLAS {blas_threads}, kernel {blas_kernel()}), "
                f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, {code_id()}\n")
    # When this command began: scripts/make_results.py orders a setting's directories by the log's
    # earliest such line, so a later rerun of a baseline seed never displaces the first run.
    print(f"started {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}", flush=True)
    # The run log's kernel line, in the demo's form: scripts/make_results.py reads it from <dir>.log to
    # pair each run with the STL run on its own kernel (kernels round differently).
    print(f"GEMM: PyTorch {torch.__version__} through OpenBLAS, kernel {blas_kernel()}, {blas_threads} threads; code: {code_id()}", flush=True)
    for model, hierarchy, n, methods, seeds in plan:
        directory = directory_of(model, hierarchy, n)
        runs = {}
        if directory in finished:
            if not a.add:
                continue  # resumable: finished settings are kept
            runs = finished[directory]
        todo = [m for m in methods if m not in runs]
        if not todo:
            continue
        order = list(runs) + todo
        if STL_DEV in order:  # beside STL, as the demo prints it
            order.remove(STL_DEV)
            order.insert(order.index("stl") + 1, STL_DEV)
        runs.update({m: [] for m in todo})
        for seed in range(a.first_seed, a.first_seed + seeds):
            rows = stratified_subset(train_fine.numpy(), n, np.random.default_rng(seed))
            x, fine = train_x[rows], train_fine[rows]
            for m in todo:
                state = record = None
                if a.resume:
                    setting_state = os.path.join(a.resume, os.path.basename(directory))
                    os.makedirs(setting_state, exist_ok=True)
                    state, record = (os.path.join(setting_state, f"{m}_seed{seed}{ext}") for ext in (".pt", ".json"))
                if record is not None and os.path.exists(record):
                    r, earlier = read_run_record(record), "  [finished earlier]"
                else:
                    try:
                        r = train_one(m, model, hierarchy, x, fine, test_x, test_fine, seed, a.epochs, a.batch, a.lr,
                                      a.aux_weight, a.dtg_follow_schedule, state_path=state, deadline=deadline)
                    except TimeLimitReached as stop:
                        print(f"time limit reached: {stop} saved in {state}; the same command continues from there", flush=True)
                        sys.exit(75)
                    earlier = ""
                    if record is not None:
                        write_run_record(record, r)
                r["seed"] = seed
                runs[m].append(r)
                # The runs this command has finished so far (the setting's CSVs come when all have):
                # a command that never finishes still leaves their accuracies.
                write_csv(directory, f"partial_runs_{hierarchy}_{model}.csv", *runs_table(todo, runs))
                print(f"  {hierarchy} {model} n={n} seed {seed} {m:<20} test accuracy {100 * r['accuracy']:.2f}%"
                      f"  ({r['seconds_per_epoch']:.3f} s/epoch){'  DIVERGED' if r['diverged'] else ''}{earlier}", flush=True)
        write_summary(directory, hierarchy, model, order, runs)
        print(f"done {directory}", flush=True)


if __name__ == "__main__":
    main()
