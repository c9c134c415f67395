#!/usr/bin/python3
"""How far float32 convolution weight gradients sit from float64 ones, in auxl and in PyTorch,
from the same parameters, images and output gradient (README, *Tests*: the CNN's float32
sensitivity).  The network is the study CNN's convolutional part, c32(ReLU, 2x2 pool) -> c64(ReLU,
2x2 pool), initialised as the study does; each case is one initialisation and one batch of 128
Fashion-MNIST training images.  A ReLU whose input is nearer zero than float32 rounding, or a
pooling window whose two largest inputs are that near, sends a gradient to another pixel: an
"event", a relative error far above rounding's.  Prints each case and, per library, the events
(> 1e-5) and the median error of the other cases.

    /usr/bin/python3 benchmarks/float32_conv.py build/benchmarks/float32_conv_auxl [--seeds 8] [--batches 4]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import blas_kernel, set_threads  # noqa: E402

EVENT = 1e-5
# auxl's arena: conv1 weight (32x1x3x3), bias (32), conv2 weight (64x32x3x3), bias (64), no padding here.
SHAPES = [(32, 1, 3, 3), (32,), (64, 32, 3, 3), (64,)]


def torch_errors(directory):
    p = np.fromfile(os.path.join(directory, "parameters.f32"), dtype=np.float32)
    expected = sum(int(np.prod(s)) for s in SHAPES)
    if p.size != expected:
        raise SystemExit(f"float32_conv: {p.size} parameters, expected {expected} (the layout changed?)")
    tensors, at = [], 0
    for s in SHAPES:
        n = int(np.prod(s))
        tensors.append(torch.from_numpy(p[at:at + n].reshape(s).copy()))
        at += n
    x = torch.from_numpy(np.fromfile(os.path.join(directory, "images.f32"), dtype=np.float32).reshape(128, 1, 28, 28))
    dy = torch.from_numpy(np.fromfile(os.path.join(directory, "output_gradient.f32"), dtype=np.float32).reshape(128, 64, 7, 7))
    grads = {}
    for dtype in (torch.float32, torch.float64):
        w1, b1, w2, b2 = (t.to(dtype).clone().requires_grad_(True) for t in tensors)
        h = F.max_pool2d(F.relu(F.conv2d(x.to(dtype), w1, b1, padding=1)), 2)
        F.max_pool2d(F.relu(F.conv2d(h, w2, b2, padding=1)), 2).backward(dy.to(dtype))
        grads[dtype] = (w1.grad.double(), w2.grad.double())
    return [((a - b).norm() / b.norm()).item() for a, b in zip(grads[torch.float32], grads[torch.float64])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("auxl", help="the float32_conv_auxl program")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--batches", type=int, default=4, help="batches per seed, rows 0, 1000, 2000, ...")
    a = ap.parse_args()
    set_threads(1)
    print(f"# float32_conv {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}: torch {torch.__version__}, OpenBLAS kernel "
          f"{blas_kernel()}, 1 thread; relative L2 error of float32 weight gradients against float64")
    print(f"{'seed':>4} {'rows':>6}  {'auxl conv1':>10} {'auxl conv2':>10}  {'torch conv1':>11} {'torch conv2':>11}")
    cases = []
    with tempfile.TemporaryDirectory() as d:
        for seed in range(1, a.seeds + 1):
            for b in range(a.batches):
                done = subprocess.run([a.auxl, str(seed), str(1000 * b), d], capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"float32_conv: {a.auxl} failed: {done.stderr.strip()}")
                words = done.stdout.split()
                auxl = [float(words[2]), float(words[4])]
                theirs = torch_errors(d)
                cases.append((auxl, theirs))
                print(f"{seed:>4} {1000 * b:>6}  {auxl[0]:>10.1e} {auxl[1]:>10.1e}  {theirs[0]:>11.1e} {theirs[1]:>11.1e}", flush=True)
    for name, side in (("auxl", 0), ("PyTorch", 1)):
        worst = [max(c[side]) for c in cases]
        quiet = [w for w in worst if w <= EVENT]
        print(f"{name}: {sum(w > EVENT for w in worst)} of {len(cases)} cases with an event (> {EVENT:g}); "
              f"median error of the others {statistics.median(quiet):.1e}" if quiet else "")
    both = sum(max(c[0]) > EVENT and max(c[1]) > EVENT for c in cases)
    print(f"events in both libraries on the same case: {both}")


if __name__ == "__main__":
    main()
