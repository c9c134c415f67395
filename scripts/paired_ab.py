#!/usr/bin/env python3
"""Paired A/B of one method between two study runs that differ in one option.

    python3 scripts/paired_ab.py A_DIR B_DIR --method dtg [--baseline stl@dev] [--labels A,B]

A_DIR and B_DIR are output directories of examples/fashion_hierarchy (or benchmarks/torch_study.py)
run with the same hierarchy, model, size and seeds; each holds one runs_<hierarchy>_<model>.csv.
Seeds present in both are paired: the seed fixes the training subset, the dev split and the
initial weights, so the per-seed difference B - A removes most of the seed-to-seed spread that
the two arms share.  Prints, for each arm, the method's mean and s.d., its paired gain over the
baseline; then B - A (mean +- standard error), how many seeds B won, and each arm's worst gain.

The baseline (default stl@dev, else stl) must give the same accuracy in both arms for every seed
both ran it on: it does not depend on the option under test, so a mismatch means the two directories were
not run alike (another binary, data, thread count) and the script stops rather than compare them.
Standard library only; the CSVs are read through benchmarks/study_csv.py, every field checked."""
import argparse
import math
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
import study_csv  # noqa: E402


def runs_file(directory):
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise study_csv.StudyCsvError(f"{directory}: not a directory")
    found = sorted(directory.glob("runs_*.csv"))
    if len(found) != 1:
        raise study_csv.StudyCsvError(f"{directory}: expected one runs_<hierarchy>_<model>.csv, found {len(found)}")
    return found[0]


def mean_se(values):
    m = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return m, se


def compare(a_runs, b_runs, method, baseline, a_name, b_name):
    """The A/B report's lines; raises StudyCsvError when the two runs cannot be paired."""
    for name, runs in ((a_name, a_runs), (b_name, b_runs)):
        for needed in (method, baseline):
            if needed not in runs:
                raise study_csv.StudyCsvError(f"{name}: no runs of method {needed} (has {', '.join(sorted(runs))})")
    seeds = sorted(set(a_runs[method]) & set(b_runs[method]) & set(a_runs[baseline]) & set(b_runs[baseline]))
    if len(seeds) < 2:
        raise study_csv.StudyCsvError(f"{a_name} and {b_name} share {len(seeds)} seed(s) with {method} and {baseline}; need 2")
    for s in sorted(set(a_runs[baseline]) & set(b_runs[baseline])):
        if a_runs[baseline][s] != b_runs[baseline][s]:
            raise study_csv.StudyCsvError(
                f"seed {s}: {baseline} gave {a_runs[baseline][s]} in {a_name} but {b_runs[baseline][s]} in {b_name}; "
                "the arms were not run alike")
    lines = [f"{method}: {len(seeds)} paired seeds ({seeds[0]}..{seeds[-1]}), baseline {baseline}"]
    gains = {}
    for name, runs in ((a_name, a_runs), (b_name, b_runs)):
        acc = [runs[method][s] for s in seeds]
        gain = [runs[method][s] - runs[baseline][s] for s in seeds]
        gains[name] = gain
        m, se = mean_se(gain)
        lines.append(f"  {name:<12} accuracy {statistics.fmean(acc):6.2f} +- {statistics.stdev(acc):.2f} (s.d.)   "
                     f"gain over {baseline} {m:+.2f} +- {se:.2f} (SE)   worst {min(gain):+.2f}   s.d. of gain {statistics.stdev(gain):.2f}")
    diff = [b_runs[method][s] - a_runs[method][s] for s in seeds]
    m, se = mean_se(diff)
    wins = sum(d > 0 for d in diff)
    ties = sum(d == 0 for d in diff)
    lines.append(f"  {b_name} - {a_name}: {m:+.2f} +- {se:.2f} (SE, paired by seed); {b_name} higher on {wins}, "
                 f"equal on {ties}, lower on {len(diff) - wins - ties} of {len(diff)} seeds")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a_dir")
    p.add_argument("b_dir")
    p.add_argument("--method", required=True, help="the method whose option differs between the arms, e.g. dtg")
    p.add_argument("--baseline", default=None, help="paired baseline (default: stl@dev if both arms ran it, else stl)")
    p.add_argument("--labels", default="A,B", help="names of the two arms, comma-separated")
    args = p.parse_args(argv)
    labels = args.labels.split(",")
    if len(labels) != 2 or not all(labels):
        p.error("--labels takes two non-empty names separated by a comma")
    try:
        a_runs = study_csv.read_runs(runs_file(args.a_dir))
        b_runs = study_csv.read_runs(runs_file(args.b_dir))
        baseline = args.baseline or ("stl@dev" if "stl@dev" in a_runs and "stl@dev" in b_runs else "stl")
        for line in compare(a_runs, b_runs, args.method, baseline, labels[0], labels[1]):
            print(line)
    except (study_csv.StudyCsvError, OSError) as e:
        print(f"paired_ab: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
