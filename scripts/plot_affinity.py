#!/usr/bin/env python3
"""Plot the per-epoch transference written by examples/transference_affinity.

Usage: scripts/plot_affinity.py affinity.csv [more.csv ...] [-o affinity.png]
Needs matplotlib (scripts/setup.sh --plots installs it with pip).
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", help="CSV files written by transference_affinity")
    parser.add_argument("-o", "--output", default="affinity.png")
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(6, 4))
    for path in args.csv:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        epochs = [float(r["epoch"]) for r in rows]
        for column in [c for c in rows[0] if c.startswith("Z")]:
            ax.plot(epochs, [float(r[column]) for r in rows], marker="o", label=f"{path}: {column}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("transference Z (aux → primary)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
