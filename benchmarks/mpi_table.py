#!/usr/bin/env python3
"""Median table of benchmarks/mpi_throughput.sh's CSV (stdin): examples/s per method and setting,
and the speed-up of 2 processes over 1 process (both 1 BLAS thread) and over 1 process x 2 threads."""
import csv
import statistics
import sys

rows = [r for r in csv.DictReader(line for line in sys.stdin if not line.startswith("#"))]
by = {}
for r in rows:
    by.setdefault(r["method"], {}).setdefault((r["processes"], r["threads"]), []).append(float(r["examples_per_s"]))
print("| method | 1 proc × 1 thread | 2 procs × 1 thread | 1 proc × 2 threads | 2 procs / 1 proc | 2 procs / 2 threads |")
print("|---|---|---|---|---|---|")
for method, settings in by.items():
    one = statistics.median(settings[("1", "1")])
    two = statistics.median(settings[("2", "1")])
    threads = statistics.median(settings[("1", "2")])
    print(f"| {method} | {one:,.0f} | {two:,.0f} | {threads:,.0f} | {two / one:.2f}× | {two / threads:.2f}× |")
print("(examples per second, median of", len(next(iter(by.values()))[("1", "1")]), "runs)")
