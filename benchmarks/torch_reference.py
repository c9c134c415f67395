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

AUX = 10  # auxiliary classes: the fine labels (human) or MAXL's generated classes
HIERARCHIES = {  # Fashion-MNIST fine class -> primary class, as auxl::data::hierarchy
    "super5": [0, 1, 0, 2, 0, 3, 0, 3, 4, 3],
    "half2": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
    "parity2": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
}


def make_trunk(model):
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())


class MultiTask(nn.Module):
    def __init__(self, model, primary_classes):
        super().__init__()
        self.trunk = make_trunk(model)
        self.primary = nn.Linear(128, primary_classes)
        self.aux = nn.Linear(128, AUX)

    def forward(self, x):
        z = self.trunk(x)
        return self.primary(z), self.aux(z)


def block_softmax(logits, primary, psi):
    """Softmax restricted to the psi auxiliary classes of each example's primary class."""
    block = torch.arange(AUX, device=logits.device) // psi
    mask = block[None, :] == primary[:, None]
    return logits.masked_fill(~mask, float("-inf")).softmax(dim=1)


def soft_cross_entropy(logits, targets):
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def make_step(method, model, primary_classes=5, lr=0.01, weight_decay=0.0, aux_weight=1.0):
    """(net, opt, step) for one composition; step(x, y, fine) is one training step.  Lookahead
    steps use the optimizer's current learning rate, so a schedule on `opt` applies to them."""
    net = MultiTask(model, primary_classes)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    trunk_params = list(net.trunk.parameters())
    psi = AUX // primary_classes

    def current_lr():
        return opt.param_groups[0]["lr"]

    if method == "stl":
        def step(x, y, fine):
            opt.zero_grad(set_to_none=True)
            p, _ = net(x)
            F.cross_entropy(p, y).backward()
            opt.step()
        return net, opt, step

    if method == "human+equal":
        def step(x, y, fine):
            opt.zero_grad(set_to_none=True)
            p, a = net(x)
            (F.cross_entropy(p, y) + aux_weight * F.cross_entropy(a, fine)).backward()
            opt.step()
        return net, opt, step

    n = len(trunk_params)

    def task_gradients(x, y, fine):
        """Primary and auxiliary gradients, each over the trunk and its own head (two backward passes)."""
        p, a = net(x)
        lp, la = F.cross_entropy(p, y), F.cross_entropy(a, fine)
        g = torch.autograd.grad(lp, trunk_params + list(net.primary.parameters()), retain_graph=True)
        v = torch.autograd.grad(la, trunk_params + list(net.aux.parameters()))
        return g, v

    def apply(g, v, w):
        """Trunk moves along G + w V (w: one weight, or one per trunk tensor); each head along its
        own task's gradient."""
        for prm, gi, vi, wi in zip(trunk_params, g[:n], v[:n], w if isinstance(w, list) else [w] * n):
            prm.grad = gi + wi * vi
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
            apply(g, v, aux_weight * cos.clamp(min=0))
        return net, opt, step

    if method == "human+transference":
        def step(x, y, fine):
            g, v = task_gradients(x, y, fine)
            best, best_w = None, 0.0
            with torch.no_grad():
                params = dict(net.named_parameters())
                for w in (0.0, aux_weight):  # candidates: primary only, primary + aux
                    fast = dict(params)
                    for (name, prm), gi, vi in zip(list(net.trunk.named_parameters()), g[:n], v[:n]):
                        d = gi + w * vi
                        buf = opt.state.get(prm, {}).get("momentum_buffer")
                        d = d if buf is None else 0.9 * buf + d
                        fast["trunk." + name] = prm - current_lr() * d
                    lp_after = F.cross_entropy(functional_call(net, fast, (x,))[0], y)
                    if best is None or lp_after < best:
                        best, best_w = lp_after, w
            apply(g, v, best_w)
        return net, opt, step

    if method == "human+module_aware":
        # MAOAL: an importance a_m = ReLU(ω_m) per trunk module scales the auxiliary gradient of
        # that module; every 20 steps an implicit hypergradient on a dev batch (the first batch
        # seen, for timing; `dev` below): v = ∇L_pri(dev), s = Σ_{j≤3} (I − αJ)^j v with
        # J u = H_pri u + H_aux (a ⊙ u) + wd u (exact HVPs by double backward), ∇ω_m =
        # −α ⟨s_m, ∇_m L_aux⟩, clipped to norm 10, SGD momentum 0.9, lr 1e-3 on ω.
        modules = [m for m in net.trunk if list(m.parameters())]
        sizes = [len(list(m.parameters())) for m in modules]
        omega, velocity = torch.ones(len(modules)), torch.zeros(len(modules))
        params = list(net.parameters())
        n_primary_head = len(list(net.primary.parameters()))
        state = {"steps": 0, "dev": None}

        def importances():
            return omega.clamp(min=0).tolist()

        def per_module(values):  # one value per trunk parameter tensor
            return [v for v, size in zip(values, sizes) for _ in range(size)]

        def upper(x, y, fine):
            alpha = current_lr()
            dev_x, dev_y = state["dev"]
            vdev = torch.autograd.grad(F.cross_entropy(net(dev_x)[0], dev_y), params, allow_unused=True)
            vdev = [torch.zeros_like(p) if g is None else g for p, g in zip(params, vdev)]
            p, a = net(x)
            primary_set = trunk_params + list(net.primary.parameters())
            aux_set = trunk_params + list(net.aux.parameters())
            gp = torch.autograd.grad(F.cross_entropy(p, y), primary_set, create_graph=True)
            ga = torch.autograd.grad(F.cross_entropy(a, fine), aux_set, create_graph=True)
            scale = per_module(importances())

            def apply_j(u):
                u_primary = u[:n + n_primary_head]
                u_aux = [ui * s for ui, s in zip(u[:n], scale)] + u[n + n_primary_head:]
                hp = torch.autograd.grad(gp, primary_set, grad_outputs=u_primary, retain_graph=True)
                ha = torch.autograd.grad(ga, aux_set, grad_outputs=u_aux, retain_graph=True)
                out = [weight_decay * ui for ui in u]
                for i in range(n):
                    out[i] = out[i] + hp[i] + ha[i]
                for i in range(n, n + n_primary_head):
                    out[i] = out[i] + hp[i]
                for i, h in zip(range(n + n_primary_head, len(u)), ha[n:]):
                    out[i] = out[i] + h
                return out

            term, s = list(vdev), list(vdev)
            for _ in range(3):
                jt = apply_j(term)
                term = [t - alpha * j for t, j in zip(term, jt)]
                s = [si + t for si, t in zip(s, term)]
            hyper = torch.zeros(len(modules))
            idx = 0
            for mi, size in enumerate(sizes):
                if omega[mi] > 0:
                    hyper[mi] = -alpha * sum((s[idx + j] * ga[idx + j]).sum() for j in range(size)).item()
                idx += size
            norm = hyper.norm()
            if norm > 10:
                hyper *= 10 / norm
            velocity.mul_(0.9).add_(hyper)
            omega.sub_(1e-3 * velocity)

        def step(x, y, fine, dev=None):
            if state["dev"] is None:
                state["dev"] = dev if dev is not None else (x, y)
            g, v = task_gradients(x, y, fine)
            apply(g, v, per_module(importances()))
            state["steps"] += 1
            if state["steps"] % 20 == 0:
                upper(x, y, fine)
        return net, opt, step

    if method == "maxl+equal":
        gen = nn.Sequential(make_trunk(model), nn.Linear(128, AUX))
        for m in gen.modules():  # MAXL's code initialises its generator Xavier-normal, biases 0
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)
        gen_opt = torch.optim.SGD(gen.parameters(), lr=1e-3, weight_decay=5e-4)
        params = list(net.parameters())
        names = [n for n, _ in net.named_parameters()]
        def step(x, y, fine):
            t = block_softmax(gen(x), y, psi)
            p, a = net(x)
            loss = F.cross_entropy(p, y) + aux_weight * soft_cross_entropy(a, t)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            fast = {n: w - current_lr() * g for n, w, g in zip(names, params, grads)}
            p_after, _ = functional_call(net, fast, (x,))
            t_mean = t.mean(dim=0)
            meta = F.cross_entropy(p_after, y) + 0.2 * (t_mean * torch.log(t_mean + 1e-20)).sum()
            gen_opt.zero_grad(set_to_none=True)
            meta.backward(inputs=list(gen.parameters()))
            gen_opt.step()
            for prm, g in zip(params, grads):
                prm.grad = g.detach()
            opt.step()
        return net, opt, step

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
    _, _, step = make_step(a.method, a.model, primary_classes=5)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(a.batch, 1, 28, 28, generator=g)
    fine = torch.randint(0, 10, (a.batch,), generator=g)
    y = torch.tensor(HIERARCHIES["super5"])[fine]
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
