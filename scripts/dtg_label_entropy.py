#!/usr/bin/env python3
"""How uniform DTG's generated labels are in the study's runs: per setting, the mean per-example
entropy of the generated label over its maximum log psi, in the first and the last epoch, and the
learned weight of the manual (human) task, from auxl's per-epoch CSVs.

    python3 scripts/dtg_label_entropy.py [docs/study] [--epochs 20]

Reads every <hierarchy>_<model>_dtg_seed<s>.csv below the directory (auxl's demo writes one per
run, with the columns dtg_label_entropy and dtg_manual_weight1); variants of DTG
(--dtg-follow-schedule, --hvp central: directories tagged _dtgfollow, _central) are left out, as
scripts/make_results.py does, and so are runs that have not reached --epochs yet (a study run in
progress; they are counted in the last line).  A share of 1 means every example's label is uniform over the
psi generated classes of its primary class (psi = 10 / primary classes: 5 for half2 and parity2,
2 for super5)."""
import csv
import glob
import math
import os
import re
import sys
from collections import defaultdict

PRIMARY_CLASSES = {"half2": 2, "parity2": 2, "super5": 5}
RUN = re.compile(r"^(half2|parity2|super5)_(mlp|cnn)_dtg_seed(\d+)\.csv$")
SIZE = re.compile(r"_n(\d+)")


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    args = sys.argv[1:]
    epochs = 20
    if "--epochs" in args:
        at = args.index("--epochs")
        try:
            epochs = int(args[at + 1])
        except (IndexError, ValueError):
            raise SystemExit("dtg_label_entropy: --epochs needs a whole number") from None
        del args[at:at + 2]
    root = args[0] if args else "docs/study"
    settings, unfinished = defaultdict(list), 0
    for path in sorted(glob.glob(os.path.join(root, "**", "*_dtg_seed*.csv"), recursive=True)):
        directory = os.path.basename(os.path.dirname(path))
        match, size = RUN.match(os.path.basename(path)), SIZE.search(directory)
        if not match or not size or "_dtgfollow" in directory or "_central" in directory or directory.endswith("_torch"):
            continue
        try:
            rows = rows_of(path)
            if not rows or "dtg_label_entropy" not in rows[0]:
                continue
            if any(v is None for v in rows[-1].values()):
                raise ValueError(f"its last row has {sum(v is not None for v in rows[-1].values())} of {len(rows[-1])} fields")
            if int(rows[-1]["epoch"]) < epochs:
                unfinished += 1
                continue
            hierarchy, model = match.group(1), match.group(2)
            maximum = math.log(10 // PRIMARY_CLASSES[hierarchy])
            weight = rows[-1].get("dtg_manual_weight1")
            settings[(hierarchy, model, int(size.group(1)))].append(
                (float(rows[0]["dtg_label_entropy"]) / maximum, float(rows[-1]["dtg_label_entropy"]) / maximum,
                 float(weight) if weight else float("nan")))
        except (KeyError, TypeError, ValueError) as e:  # a truncated or foreign CSV: name it
            raise SystemExit(f"dtg_label_entropy: {path}: not a DTG run log ({type(e).__name__}: {e})") from None
    if not settings:
        raise SystemExit(f"dtg_label_entropy: no DTG run CSVs below {root}")
    print("| setting | runs | label entropy / log psi, first epoch | last epoch | manual task's weight, last epoch |")
    print("|---|---|---|---|---|")
    for (hierarchy, model, size), runs in sorted(settings.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        first = [r[0] for r in runs]
        last = [r[1] for r in runs]
        weight = [r[2] for r in runs]
        print(f"| {hierarchy}, {model.upper()}, {size:,} | {len(runs)} | {min(first):.3f}–{max(first):.3f} | "
              f"{min(last):.4f}–{max(last):.4f} | {min(weight):.2f}–{max(weight):.2f} |")
    if unfinished:
        print(f"\n({unfinished} run(s) short of {epochs} epochs left out)")


if __name__ == "__main__":
    main()
