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
                      each a lookahead step of the trunk by SGD's own rule (weight decay, momentum;
                      heads kept) and one forward; apply the candidate with the lower lookahead
                      primary loss
  maxl+equal          MAXL, per step: a label generator (the trunk's architecture + linear to the
                      10 auxiliary classes, block softmax), training gradient with create_graph,
                      lookahead w' = w - lr * g, primary loss at w' plus 0.2 x the batch-entropy
                      regulariser differentiated into the generator (double backward); then the
                      network's step with the same gradient (as auxl does: the lookahead reuses it)
  human+module_aware  MAOAL: per-module importances on the trunk's auxiliary gradient; every 20
                      steps the implicit hypergradient (3 Neumann terms, double-backward HVPs)
  rl_aux+equal        RL-AUX, single pass: a PPO policy picks each example's auxiliary label in its
  rl_aux_w+equal      primary class's block (and, _w, a weight of 21 bins); reward = drop of the
                      dev primary loss over the step + 0.2 x label-share entropy (rl_aux_step)
  dtg                 DTG-style joint generation: feature and label generators, lower step on
                      primary + human + generated losses, upper step every step by the implicit
                      gradient with exact HVPs (dtg_step)

Methods that need a dev set (module-aware, RL-AUX, DTG) use the first batch they see when
make_step gets none (timing); benchmarks/torch_study.py gives them auxl's 5 % dev split.
"""
import argparse
import copy
import ctypes
import json
import re
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def loaded_openblas():
    """The OpenBLAS libraries this process has loaded (Debian's torch links the system one)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]}
    return [ctypes.CDLL(path) for path in sorted(paths)]


def blas_kernel():
    """The kernel OpenBLAS picked for this CPU (OPENBLAS_CORETYPE overrides it), e.g. SkylakeX, or
    "no OpenBLAS". Runs on two kernels round differently, so the study's run log records it."""
    for lib in loaded_openblas():
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
    return "no OpenBLAS"


def set_threads(threads, blas_threads=None):
    """Limits PyTorch's own pool to `threads` and the OpenBLAS pool its matrix products run on to
    `blas_threads` (default: `threads`).
    torch.set_num_threads alone does not reach OpenBLAS (Debian's torch calls the system OpenBLAS,
    whose pool defaults to every core): with it alone a "1 thread" run multiplied on two, and on a
    busy machine its second thread's spin-waiting cost several times the run's time.  Returns
    OpenBLAS's thread count afterwards, or None when no OpenBLAS is loaded."""
    torch.set_num_threads(threads)
    for lib in loaded_openblas():
        if hasattr(lib, "openblas_set_num_threads"):
            lib.openblas_set_num_threads(ctypes.c_int(threads if blas_threads is None else blas_threads))
            return int(lib.openblas_get_num_threads())
    return None
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
    """Trunk, a primary head and one auxiliary head of AUX classes (two for DTG: the manual task,
    then the generated one, in `extra`)."""
    def __init__(self, model, primary_classes, generated_head=False):
        super().__init__()
        self.trunk = make_trunk(model)
        self.primary = nn.Linear(128, primary_classes)
        self.aux = nn.Linear(128, AUX)
        self.extra = nn.Linear(128, AUX) if generated_head else None

    def forward(self, x):
        z = self.trunk(x)
        return self.primary(z), self.aux(z)

    def generated(self, x):
        return self.extra(self.trunk(x))


class DevRows:
    """The dev set of the methods that need one: cyclic batches (module-aware, DTG: auxl's
    meta::dev_primary_gradient) or random rows (RL-AUX's reward batch)."""
    def __init__(self, x, y, seed=0):
        self.x, self.y, self.cursor = x, y, 0
        self.gen = torch.Generator().manual_seed(seed)

    def cyclic(self, n):
        n = min(n, self.x.shape[0])
        idx = (self.cursor + torch.arange(n)) % self.x.shape[0]
        self.cursor = (self.cursor + n) % self.x.shape[0]
        return self.x[idx], self.y[idx]

    def random(self, n):
        if n >= self.x.shape[0]:
            return self.x, self.y
        idx = torch.randint(0, self.x.shape[0], (n,), generator=self.gen)
        return self.x[idx], self.y[idx]


def block_mask(primary, psi):
    """True on the psi auxiliary classes of each example's primary class (batch x AUX)."""
    block = torch.arange(AUX, device=primary.device) // psi
    return block[None, :] == primary[:, None]


def block_softmax(logits, primary, psi):
    """Softmax restricted to the psi auxiliary classes of each example's primary class."""
    return logits.masked_fill(~block_mask(primary, psi), float("-inf")).softmax(dim=1)


def soft_cross_entropy(logits, targets):
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def state_of(obj):
    """A copy of one stateful object of a step (torch_study --resume): modules and optimizers
    through their state_dict, tensors, DevRows, plain dicts and lists (RL-AUX's rollout)."""
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, DevRows):
        return {"cursor": obj.cursor, "generator": obj.gen.get_state()}
    if isinstance(obj, list) and obj and all(hasattr(o, "state_dict") for o in obj):
        return [o.state_dict() for o in obj]
    if isinstance(obj, (dict, list)):
        return copy.deepcopy(obj)
    raise TypeError(f"torch_reference.state_of: no state for a {type(obj).__name__}")


def restore_state(obj, saved):
    """Puts state_of(obj)'s copy back into obj, in place (the step's closures hold obj)."""
    if hasattr(obj, "load_state_dict"):
        obj.load_state_dict(saved)
    elif isinstance(obj, torch.Tensor):
        with torch.no_grad():
            obj.copy_(saved)
    elif isinstance(obj, DevRows):
        obj.cursor = saved["cursor"]
        obj.gen.set_state(saved["generator"])
    elif isinstance(obj, list) and obj and all(hasattr(o, "load_state_dict") for o in obj):
        if len(saved) != len(obj):
            raise ValueError(f"torch_reference.restore_state: {len(saved)} saved states for {len(obj)} objects")
        for o, sv in zip(obj, saved):
            o.load_state_dict(sv)
    elif isinstance(obj, dict):
        obj.clear()
        obj.update(saved)
    elif isinstance(obj, list):
        obj[:] = saved
    else:
        raise TypeError(f"torch_reference.restore_state: no state for a {type(obj).__name__}")


def make_step(method, model, primary_classes=5, lr=0.01, weight_decay=0.0, aux_weight=1.0, dev=None,
              dtg_follow_schedule=False):
    """(net, opt, step) for one composition; step(x, y, fine) is one training step; step.stateful
    (when present) names the step's own state beside net and opt (state_of/restore_state).  Lookahead
    steps use the optimizer's current learning rate, so a schedule on `opt` applies to them.
    dev: a DevRows for the methods that need a dev set (module-aware, RL-AUX, DTG); None makes
    the first batch a step sees the dev set (timing).  dtg_follow_schedule: DTG's generator rates
    take the network's schedule factor (current lr / lr), as auxl's follow_network_schedule."""
    net = MultiTask(model, primary_classes, generated_head=method == "dtg")
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    trunk_params = list(net.trunk.parameters())
    psi = AUX // primary_classes
    dev_state = [dev]

    def current_lr():
        return opt.param_groups[0]["lr"]

    def dev_rows(x, y):
        if dev_state[0] is None:
            dev_state[0] = DevRows(x, y)
        return dev_state[0]

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
                        d = gi + w * vi + weight_decay * prm  # torch.optim.SGD's rule, heads kept
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
        state = {"steps": 0}

        def importances():
            return omega.clamp(min=0).tolist()

        def per_module(values):  # one value per trunk parameter tensor
            return [v for v, size in zip(values, sizes) for _ in range(size)]

        def upper(x, y, fine):
            alpha = current_lr()
            dev_x, dev_y = dev_rows(x, y).cyclic(256)
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
            state["hypergradient"] = hyper.clone()
            velocity.mul_(0.9).add_(hyper)
            omega.sub_(1e-3 * velocity)

        def step(x, y, fine):
            dev_rows(x, y)
            g, v = task_gradients(x, y, fine)
            apply(g, v, per_module(importances()))
            state["steps"] += 1
            if state["steps"] % 20 == 0:
                upper(x, y, fine)
        step.state = state  # the last hypergradient: tests/python/test_torch_step.py compares it with auxl's
        step.stateful = {"omega": omega, "velocity": velocity, "state": state}
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
        step.generator = gen  # tests/python/test_torch_step.py loads auxl's generator parameters into it
        step.stateful = {"generator": gen, "generator_optimizer": gen_opt}
        return net, opt, step

    if method in ("rl_aux+equal", "rl_aux_w+equal"):
        return net, opt, rl_aux_step(net, opt, model, psi, aux_weight, dev_rows, learn_weights=method == "rl_aux_w+equal")

    if method == "dtg":
        return net, opt, dtg_step(net, opt, primary_classes, psi, aux_weight, weight_decay, dev_rows, current_lr,
                                  follow_schedule=dtg_follow_schedule, base_lr=lr)

    raise SystemExit(f"torch_reference: unknown method {method!r}")


class Policy(nn.Module):
    """RL-AUX's policy: the model's trunk architecture with label, weight-bin and value heads."""
    BINS = 21

    def __init__(self, model):
        super().__init__()
        self.trunk = make_trunk(model)
        self.label = nn.Linear(128, AUX)
        self.weight = nn.Linear(128, self.BINS)
        self.value = nn.Linear(128, 1)
        for m in self.modules():  # auxl's policy: He-uniform weights, zero biases
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        with torch.no_grad():  # prior centred on weight 1 (bin 7.5): auxl's initial_weight = 1
            k = torch.arange(self.BINS, dtype=torch.float32)
            self.weight.bias.copy_(-(k - 7.5) ** 2 / 8)

    def forward(self, x):
        z = self.trunk(x)
        return self.label(z), self.weight(z), self.value(z).squeeze(1)


def rl_aux_step(net, opt, model, psi, aux_weight, dev_rows, learn_weights):
    """RL-AUX, single-pass schedule (auxl's default): a policy picks each example's auxiliary
    label inside its primary class's block (and, weight-aware, a weight 2^(8k/20 - 3) of 21 bins);
    the network takes its step with them; the reward is the drop of the primary loss on 256 dev
    rows plus 0.2 x the entropy of the batch's label shares; every 4 batches, PPO (GAE with
    gamma^B, lambda^B per batch, 10 epochs of minibatches of 128, clip 0.2, entropy 0.01, value
    0.5, gradient-norm clip 0.5, Adam 3e-4, advantages normalised per minibatch)."""
    policy = Policy(model)
    popt = torch.optim.Adam(policy.parameters(), lr=3e-4, eps=1e-5)
    bin_weight = 2.0 ** (8 * torch.arange(Policy.BINS, dtype=torch.float32) / 20 - 3)
    rollout = []

    def distributions(x, y):
        label_logits, bin_logits, value = policy(x)
        label_logits = label_logits.masked_fill(~block_mask(y, psi), -1e9)  # the block of y only (finite: entropy stays defined)
        return (torch.distributions.Categorical(logits=label_logits), torch.distributions.Categorical(logits=bin_logits),
                value)

    def log_prob(d_label, d_bin, label, k):
        return d_label.log_prob(label) + (d_bin.log_prob(k) if learn_weights else 0.0)

    def entropy(d_label, d_bin):
        return d_label.entropy() + (d_bin.entropy() if learn_weights else 0.0)

    def ppo_update():
        batch = rollout[0]["x"].shape[0]
        gamma, lam = 0.99 ** batch, 0.95 ** batch
        values = [r["value"].mean().item() for r in rollout]
        adv_batch, running = [0.0] * len(rollout), 0.0
        for t in reversed(range(len(rollout))):  # GAE; the last step bootstraps on its own value (as auxl)
            next_v = values[t + 1] if t + 1 < len(rollout) else values[-1]
            running = rollout[t]["reward"] + gamma * next_v - values[t] + gamma * lam * running
            adv_batch[t] = running
        x = torch.cat([r["x"] for r in rollout])
        y = torch.cat([r["y"] for r in rollout])
        label = torch.cat([r["label"] for r in rollout])
        k = torch.cat([r["bin"] for r in rollout])
        old_logp = torch.cat([r["logp"] for r in rollout])
        ret = torch.cat([torch.full((r["x"].shape[0],), a + v) for r, a, v in zip(rollout, adv_batch, values)])
        adv = ret - torch.cat([r["value"] for r in rollout])
        for _ in range(10):
            order = torch.randperm(x.shape[0])
            for start in range(0, x.shape[0], 128):
                idx = order[start:start + 128]
                d_label, d_bin, value = distributions(x[idx], y[idx])
                a = adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                ratio = torch.exp(log_prob(d_label, d_bin, label[idx], k[idx]) - old_logp[idx])
                surrogate = -torch.min(ratio * a, ratio.clamp(0.8, 1.2) * a).mean()
                loss = surrogate + 0.5 * ((value - ret[idx]) ** 2).mean() - 0.01 * entropy(d_label, d_bin).mean()
                popt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
                popt.step()
        rollout.clear()

    def step(x, y, fine, actions=None):
        """actions: (labels, bins) to take instead of sampling them (tests/python/test_torch_step.py
        replays auxl's draws); labels index the auxiliary head, bins are 0 without weights."""
        with torch.no_grad():
            d_label, d_bin, value = distributions(x, y)
            if actions is None:
                label = d_label.sample()
                k = d_bin.sample() if learn_weights else torch.zeros_like(label)
            else:
                label, k = actions
            logp = log_prob(d_label, d_bin, label, k)
            rx, ry = dev_rows(x, y).random(256)
            before = F.cross_entropy(net(rx)[0], ry).item()
        opt.zero_grad(set_to_none=True)
        p, a = net(x)
        aux = F.cross_entropy(a, label, reduction="none")
        aux = (aux * bin_weight[k]).mean() if learn_weights else aux.mean()
        (F.cross_entropy(p, y) + aux_weight * aux).backward()
        opt.step()
        with torch.no_grad():
            after = F.cross_entropy(net(rx)[0], ry).item()
        share = torch.bincount(label, minlength=AUX).float() / label.shape[0]
        share = share[share > 0]
        reward = before - after + 0.2 * -(share * share.log()).sum().item()
        rollout.append({"x": x, "y": y, "label": label, "bin": k, "logp": logp, "value": value, "reward": reward})
        if len(rollout) == 4:
            ppo_update()
    step.policy = policy  # for tests and diagnostics
    step.stateful = {"policy": policy, "policy_optimizer": popt, "rollout": rollout}
    return step


def dtg_step(net, opt, primary_classes, psi, aux_weight, weight_decay, dev_rows, current_lr, follow_schedule=False,
             base_lr=None):
    """DTG-style generation (auxl's gen::dtg with its defaults; the manual task is the human fine
    labels).  Generators: x~ = x + G_f([x; onehot(y)]) (one hidden layer of 128, last layer zero
    at the start), y~ = blocksoftmax_y(G_l(x~)) (one hidden layer of 128).  Lower step:
    L_T = L_pri(x) + w relu(omega) L_human(x) + w L_soft(x~, y~) with the generators fixed.  Upper
    step after every lower step, on the same batch: v = grad L_pri on 256 dev rows, s = sum_{j<=3}
    (I - alpha H)^j v with H = Hessian of L_T + wd (exact double-backward HVPs), grad_phi =
    -alpha grad_phi <s, grad_theta L_T> + grad_phi R, R = mean |x~ - x|^2 + 0.2 sum ybar log ybar,
    grad_omega likewise; joint norm clip 10; Adam 1e-3 on G_f, G_l and omega (times current_lr() /
    base_lr when follow_schedule)."""
    features = 784
    g_feat = nn.Sequential(nn.Linear(features + primary_classes, 128), nn.ReLU(), nn.Linear(128, features))
    g_label = nn.Sequential(nn.Linear(features, 128), nn.ReLU(), nn.Linear(128, AUX))
    with torch.no_grad():
        g_feat[2].weight.zero_()
        g_feat[2].bias.zero_()
    omega = torch.ones(1, requires_grad=True)
    upper_params = list(g_feat.parameters()) + list(g_label.parameters()) + [omega]
    generator_lr = 1e-3  # auxl's dtg_options::generator_lr and manual_weight_lr
    upper_opts = [torch.optim.Adam(list(g_feat.parameters()), lr=generator_lr),
                  torch.optim.Adam(list(g_label.parameters()), lr=generator_lr), torch.optim.Adam([omega], lr=generator_lr)]
    theta = list(net.parameters())

    def generate(x, y):
        flat = x.flatten(1)
        x_gen = flat + g_feat(torch.cat([flat, F.one_hot(y, primary_classes).float()], dim=1))
        return x_gen, block_softmax(g_label(x_gen), y, psi)

    def lower_loss(x, y, fine, x_gen, y_gen, manual_weight):
        p, a = net(x)
        generated = net.generated(x_gen.view_as(x))
        return (F.cross_entropy(p, y) + aux_weight * manual_weight * F.cross_entropy(a, fine)
                + aux_weight * soft_cross_entropy(generated, y_gen))

    def step(x, y, fine):
        with torch.no_grad():
            x_gen, y_gen = generate(x, y)
        opt.zero_grad(set_to_none=True)
        lower_loss(x, y, fine, x_gen, y_gen, omega.detach().clamp(min=0)).backward()
        opt.step()
        # Upper level at the updated network.
        alpha = current_lr()
        dx, dy = dev_rows(x, y).cyclic(256)
        v = torch.autograd.grad(F.cross_entropy(net(dx)[0], dy), theta, allow_unused=True)
        v = [torch.zeros_like(t) if g is None else g for t, g in zip(theta, v)]
        x_gen, y_gen = generate(x, y)
        g_lower = torch.autograd.grad(lower_loss(x, y, fine, x_gen, y_gen, omega.clamp(min=0)), theta, create_graph=True)
        term, s = list(v), list(v)
        for _ in range(3):
            hvp = torch.autograd.grad(g_lower, theta, grad_outputs=term, retain_graph=True)
            term = [t - alpha * (h + weight_decay * t) for t, h in zip(term, hvp)]
            s = [si + t for si, t in zip(s, term)]
        mean_label = y_gen.mean(dim=0)
        regulariser = ((x_gen - x.flatten(1)) ** 2).mean() + 0.2 * (mean_label * torch.log(mean_label + 1e-20)).sum()
        upper = -alpha * sum((si * gi).sum() for si, gi in zip(s, g_lower)) + regulariser
        grads = torch.autograd.grad(upper, upper_params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(upper_params, grads)]
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        scale = min(1.0, 10.0 / (norm.item() + 1e-12))
        for p, g in zip(upper_params, grads):
            p.grad = g * scale
        for o in upper_opts:
            if follow_schedule:
                o.param_groups[0]["lr"] = generator_lr * alpha / base_lr
            o.step()
    step.generators = (g_feat, g_label, omega)  # for tests and diagnostics
    step.stateful = {"feature_generator": g_feat, "label_generator": g_label, "manual_weight": omega,
                     "generator_optimizers": upper_opts}
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", default="stl")
    ap.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    set_threads(a.threads)
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
