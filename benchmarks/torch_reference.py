#!/usr/bin/python3
"""PyTorch reference of auxl's compositions: idiomatic PyTorch, the same models, losses, optimizer
and per-step algorithms, timed the way benchmarks/side_by_side_auxl times auxl.

    /usr/bin/python3 benchmarks/torch_reference.py --method maxl+equal --model mlp --threads 1

Prints one JSON line (ms per training step, peak resident memory).  Run with Debian's
python3-torch (scripts/setup.sh --torch).  benchmarks/side_by_side.py runs both libraries,
alternating, and prints the comparison.

Methods (auxl's names):
  stl                 primary cross-entropy only
  human+equal         L_pri + L_aux(fine labels), one backward
  human+cosine        GCS, weighted: trunk gradient G + max(0, cos(G, V)) V, two backward passes
  human+transference  IT-MTL: per-task trunk gradients; candidates "primary" and "primary + aux",
                      each a lookahead SGD-momentum step of the trunk and one forward; apply the
                      candidate with the lower lookahead primary loss
  maxl+equal          MAXL, per step: a label generator (the trunk's architecture + linear to the
                      10 auxiliary classes, block softmax), training gradient with create_graph,
                      lookahead w' = w - lr * g, primary loss at w' plus 0.2 x the batch-entropy
                      regulariser differentiated into the generator (double backward); then the
                      network's step with the same gradient (as auxl does: the lookahead reuses it)
"""
import argparse
import json
import re
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
try:
    from torch.func import functional_call  # PyTorch >= 2.0
except ImportError:  # Debian 12's PyTorch 1.13
    from torch.nn.utils.stateless import functional_call

PRIMARY, AUX, PSI = 5, 10, 2  # super5 primary classes, 10 auxiliary classes, 2 per primary class
SUPER5 = [0, 1, 0, 2, 0, 3, 0, 3, 4, 3]  # Fashion-MNIST fine class -> superclass


def make_trunk(model):
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())


class MultiTask(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.trunk = make_trunk(model)
        self.primary = nn.Linear(128, PRIMARY)
        self.aux = nn.Linear(128, AUX)

    def forward(self, x):
        z = self.trunk(x)
        return self.primary(z), self.aux(z)


def block_softmax(logits, primary):
    """Softmax restricted to the PSI auxiliary classes of each example's primary class."""
    block = torch.arange(AUX, device=logits.device) // PSI
    mask = block[None, :] == primary[:, None]
    return logits.masked_fill(~mask, float("-inf")).softmax(dim=1)


def soft_cross_entropy(logits, targets):
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def make_step(method, model):
    net = MultiTask(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    trunk_params = list(net.trunk.parameters())

    if method == "stl":
        def step(x, y, fine):
            opt.zero_grad(set_to_none=True)
            p, _ = net(x)
            F.cross_entropy(p, y).backward()
            opt.step()
        return step

    if method == "human+equal":
        def step(x, y, fine):
            opt.zero_grad(set_to_none=True)
            p, a = net(x)
            (F.cross_entropy(p, y) + F.cross_entropy(a, fine)).backward()
            opt.step()
        return step

    n = len(trunk_params)

    def task_gradients(x, y, fine):
        """Primary and auxiliary gradients, each over the trunk and its own head (two backward passes)."""
        p, a = net(x)
        lp, la = F.cross_entropy(p, y), F.cross_entropy(a, fine)
        g = torch.autograd.grad(lp, trunk_params + list(net.primary.parameters()), retain_graph=True)
        v = torch.autograd.grad(la, trunk_params + list(net.aux.parameters()))
        return g, v

    def apply(g, v, w):
        """Trunk moves along G + w V; each head along its own task's gradient."""
        for prm, gi, vi in zip(trunk_params, g[:n], v[:n]):
            prm.grad = gi + w * vi
        for prm, gi in zip(net.primary.parameters(), g[n:]):
            prm.grad = gi
        for prm, vi in zip(net.aux.parameters(), v[n:]):
            prm.grad = vi
        opt.step()

    if method == "human+cosine":
        def step(x, y, fine):
            g, v = task_gradients(x, y, fine)
            gt, vt = torch.cat([t.flatten() for t in g[:n]]), torch.cat([t.flatten() for t in v[:n]])
            cos = torch.dot(gt, vt) / (gt.norm() * vt.norm() + 1e-12)
            apply(g, v, cos.clamp(min=0))
        return step

    if method == "human+transference":
        def step(x, y, fine):
            g, v = task_gradients(x, y, fine)
            best, best_w = None, 0.0
            with torch.no_grad():
                params = dict(net.named_parameters())
                for w in (0.0, 1.0):  # candidates: primary only, primary + aux
                    fast = dict(params)
                    for (name, prm), gi, vi in zip(list(net.trunk.named_parameters()), g[:n], v[:n]):
                        d = gi + w * vi
                        buf = opt.state.get(prm, {}).get("momentum_buffer")
                        d = d if buf is None else 0.9 * buf + d
                        fast["trunk." + name] = prm - 0.01 * d
                    lp_after = F.cross_entropy(functional_call(net, fast, (x,))[0], y)
                    if best is None or lp_after < best:
                        best, best_w = lp_after, w
            apply(g, v, best_w)
        return step

    if method == "maxl+equal":
        gen = nn.Sequential(make_trunk(model), nn.Linear(128, AUX))
        gen_opt = torch.optim.SGD(gen.parameters(), lr=1e-3, weight_decay=5e-4)
        params = list(net.parameters())
        names = [n for n, _ in net.named_parameters()]
        def step(x, y, fine):
            t = block_softmax(gen(x), y)
            p, a = net(x)
            loss = F.cross_entropy(p, y) + soft_cross_entropy(a, t)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            fast = {n: w - 0.01 * g for n, w, g in zip(names, params, grads)}
            p_after, _ = functional_call(net, fast, (x,))
            t_mean = t.mean(dim=0)
            meta = F.cross_entropy(p_after, y) + 0.2 * (t_mean * torch.log(t_mean + 1e-20)).sum()
            gen_opt.zero_grad(set_to_none=True)
            meta.backward(inputs=list(gen.parameters()))
            gen_opt.step()
            for prm, g in zip(params, grads):
                prm.grad = g.detach()
            opt.step()
        return step

    raise SystemExit(f"torch_reference: unknown method {method!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="stl")
    ap.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    step = make_step(a.method, a.model)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(a.batch, 1, 28, 28, generator=g)
    fine = torch.randint(0, 10, (a.batch,), generator=g)
    y = torch.tensor(SUPER5)[fine]
    for _ in range(a.warmup):
        step(x, y, fine)
    start = time.perf_counter()
    for _ in range(a.steps):
        step(x, y, fine)
    ms = 1000 * (time.perf_counter() - start) / a.steps
    config = torch.__config__.show()
    blas = [m.group(0) for key in ("BLAS_INFO", "USE_MKLDNN", "USE_OPENMP")
            for m in [re.search(key + r"=[^,]*", config)] if m]
    print(json.dumps({"impl": "torch", "method": a.method, "model": a.model, "threads": a.threads, "batch": a.batch,
                      "steps": a.steps, "ms_per_step": round(ms, 4),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "blas": "; ".join(blas) or "unknown", "torch": torch.__version__}))


if __name__ == "__main__":
    main()
