#!/usr/bin/env python3
"""benchmarks/idx_reader.py on good and bad files: each bad one must raise ValueError naming
what is wrong (the PyTorch study reads Fashion-MNIST through it).  Exit 77 (skip) without NumPy."""
import gzip
import os
import sys
import tempfile

try:
    import numpy  # noqa: F401
except ImportError:
    sys.exit(77)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks"))
from idx_reader import IMAGES, LABELS, read_idx  # noqa: E402

good = (IMAGES).to_bytes(4, "big") + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes(range(24))
with tempfile.TemporaryDirectory() as d:
    def write(name, payload, compress=True):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(gzip.compress(payload) if compress else payload)
        return path

    a = read_idx(write("good.gz", good), IMAGES)
    assert a.shape == (2, 3, 4) and a[1, 2, 3] == 23, a
    compressed = gzip.compress(good)
    cases = [
        ("wrong magic", write("labels.gz", good), LABELS, "magic 0x803, expected 0x801"),
        ("truncated data", write("short.gz", good[:-5]), IMAGES, "(truncated)"),
        ("trailing bytes", write("long.gz", good + b"xx"), IMAGES, "(trailing bytes)"),
        ("truncated header", write("header.gz", good[:10]), IMAGES, "header truncated"),
        ("empty", write("empty.gz", b""), IMAGES, "too short"),
        ("not gzip", write("plain.gz", good, compress=False), IMAGES, "not a readable gzip stream"),
        ("cut gzip stream", write("cut.gz", compressed[:len(compressed) // 2], compress=False), IMAGES,
         "not a readable gzip stream"),
    ]
    failures = 0
    for what, path, magic, expected in cases:
        try:
            read_idx(path, magic)
            print(f"FAIL {what}: no error")
            failures += 1
        except ValueError as e:
            if expected not in str(e) or path not in str(e):
                print(f"FAIL {what}: message {e!s} lacks {expected!r} or the path")
                failures += 1
    print(f"{len(cases) - failures} of {len(cases)} bad files refused with the expected message")
    sys.exit(1 if failures else 0)
