#!/usr/bin/env python3
"""The two libraries take the same training steps: for each deterministic composition, on the
MLP and on the CNN, tests/torch_step_auxl.cpp trains auxl three steps from its own initial
parameters on fixed batches and writes everything as .npy; this script loads those parameters
(and MAXL's label generator's) into benchmarks/torch_reference.py's networks, repeats the same
three steps there, and compares each tensor's update (after - before) between the libraries:
    relative difference = |update_auxl - update_torch| / |update_torch|   (Euclidean norms)
It must stay under 1e-3 for every tensor (float32 rounding in two GEMM libraries is about 1e-6;
a different rule, rate or sign is of order 1).  This is what makes the study's "auxl - PyTorch"
column a comparison of two runs of one algorithm rather than of two algorithms.
RL-AUX and RL-AUX-w sample their actions from the policy: auxl writes the labels and weight bins
it drew and PyTorch takes the same ones (torch_reference's step(..., actions=)); five steps, so
that PPO updates the policy after the fourth (one minibatch of 64: the order PPO visits them in
does not matter) and the fifth step's log-probabilities come from the new policy; the policy's
update is compared too.  DTG takes one step: its lower
step, its upper gradient and its generators' updates are compared.  Module-aware runs 21 steps: its
upper level (every 20 steps, on a 64-row dev set both libraries get) is compared through its
hypergradient, and step 21 uses the new ω.
The same comparison runs once more through auxl's trainer::fit: FIT_EPOCHS epochs of FIT_ROWS
rows with the study's cosine schedule (PyTorch's CosineAnnealingLR, stepped per epoch), in the
row order fit() took, so the schedule reaching every rate (MAXL's and transference's lookahead
use the current one), the epoch boundaries and the short last batch are compared as well.
Those runs start from the study's initialisation, and before auxl's values are loaded each
tensor's are compared in distribution with PyTorch's own fresh ones (mean and spread): the study
shares no random draws between the libraries, only their distributions.

    test_torch_step.py PATH/TO/torch_step_auxl WORK_DIR [--verbose]

Exit 77 (skip) without PyTorch (scripts/setup.sh --torch installs it)."""
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(77)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks"))
from torch_reference import DevRows, make_step  # noqa: E402

METHODS = ["stl", "human+equal", "human+cosine", "human+transference", "human+module_aware", "maxl+equal",
           "rl_aux+equal", "rl_aux_w+equal", "dtg"]
MODELS = ["mlp", "cnn"]
STEPS, BATCH, TOLERANCE = 3, 16, 1e-3
STEPS_OF = {"human+module_aware": 21,  # its upper level runs at step 20; step 21 uses the new ω
            "rl_aux+equal": 5, "rl_aux_w+equal": 5,  # PPO after 4 batches, then one step with the new policy
            "dtg": 1}                    # see below
# PyTorch's Hessian-vector products are exact (double backward), and so are auxl's by default
# (forward-over-reverse, nn backward_tangent).  Its central differences (meta/hvp.hpp,
# --hvp central) are measured too and printed, not asserted: at 0.01 they cross ReLU kinks
# (10-51 % off here), and from the study's initialisation the CNN's miss at every step tried.
AUXL_FLAGS = {}
# PPO's ten Adam epochs on one rollout amplify float32 rounding in the policy's first layers: on
# the CNN, RL-AUX-w's policy update in float32 PyTorch is 3.3e-3 from the same update in float64
# PyTorch, auxl's (float32) 2.4e-4.  So RL-AUX is compared with a float64 PyTorch reference.
REFERENCE_DTYPE = {"rl_aux+equal": torch.float64, "rl_aux_w+equal": torch.float64}
# Through fit(): 3 epochs of 40 rows = batches of 16, 16 and 8, nine steps at rates 0.01, 0.0075
# and 0.0025, from the study's initialisation (torch.nn's; the step runs above start from the
# trainer's default He-uniform, where module-aware's central differences match at 1e-4).  The
# methods whose step reads the learning rate, and two that do not.
FIT_METHODS = ["stl", "human+equal", "human+transference", "maxl+equal"]
FIT_EPOCHS, FIT_ROWS = 3, 40
# And MAXL as the study trains it where the libraries' MAXL differed most (half2, CNN, 60,000:
# docs/RESULTS.md): half2's blocks of five generated classes, rate 0.05, batch 128, here 2 epochs
# of 300 rows (batches of 128, 128 and 44).  Asserted on the MLP.  On the CNN it is printed, not
# asserted: the first convolutions' weight gradients are small sums of large terms, and a 2x2
# pooling window whose two largest inputs are nearer than float32 rounding routes its gradient to
# another pixel; at batch 128 that moves auxl's by 1e-3 to 4e-3 (relative) from a float64 reference
# (auxl's float64 gradient equals PyTorch's to 1e-15; PyTorch's float32 one is 3e-6 off on this
# batch, but 1.3e-4 off on a c32-c64-pool network whose pooling has one such window), while the
# pooled convolution's bias, which sums the same values wherever they are routed, stays within
# 1e-6 (README, Tests).
STUDY_SETTING = {"hierarchy": "half2", "lr": 0.05, "batch": 128, "rows": 300, "epochs": 2}
PRIMARY_CLASSES = {"super5": 5, "half2": 2, "parity2": 2}
# DTG: one step, which compares its lower step, its upper gradient (each generator's and ω's)
# and the generators' updates.  With central differences (--hvp central) the feature generator's
# mixed product differentiates the model's input gradient across ReLU kinks and misses by far
# (README, DTG): measured, not asserted.


def read_segments(path):
    """[(name, offset, shape)] of auxl's parameter arena, in arena order."""
    segments = []
    with open(path) as f:
        for line in f:
            name, offset, *dims = line.split()
            segments.append((name, int(offset), tuple(int(d) for d in dims)))
    return segments


def load_into(module, flat, segments, what):
    """Copies auxl's flat arena into `module`'s parameters: same order, same shapes (auxl keeps
    dense weights out x in and convolution weights out x in x k x k, as PyTorch does)."""
    params = list(module.named_parameters())
    if len(params) != len(segments):
        raise SystemExit(f"{what}: PyTorch has {len(params)} tensors, auxl {len(segments)}")
    with torch.no_grad():
        for (tname, p), (aname, offset, shape) in zip(params, segments):
            if tuple(p.shape) != shape:
                raise SystemExit(f"{what}: {tname} is {tuple(p.shape)} in PyTorch, {aname} is {shape} in auxl")
            size = int(np.prod(shape))
            p.copy_(torch.from_numpy(flat[offset:offset + size].reshape(shape).copy()))


def compare(module, before, after, segments, what):
    """One line per tensor: relative difference of the two updates; returns the failures."""
    failures, lines = [], []
    for (tname, p), (aname, offset, shape) in zip(module.named_parameters(), segments):
        size = int(np.prod(shape))
        b = before[offset:offset + size].astype(np.float64)
        update_auxl = after[offset:offset + size].astype(np.float64) - b
        update_torch = p.detach().double().numpy().ravel() - b
        scale = np.linalg.norm(update_torch)
        if scale == 0:
            # A tensor no loss reaches (STL's auxiliary head): PyTorch's SGD skips tensors without a
            # gradient, auxl's applies their weight decay, which moves them by lr * wd * (1 + 1.9 +
            # 2.71) = 2.8e-5 of their norm in three steps; a gradient step would move them far more.
            norm = np.linalg.norm(b)
            moved = np.linalg.norm(update_auxl) / norm if norm > 0 else np.linalg.norm(update_auxl)  # zero biases stay 0
            lines.append(f"  {what} {aname:<26} no gradient; auxl's weight decay moved it {moved:.2e} of its norm")
            if not (moved < 1e-4):
                failures.append(f"{what} {aname}: PyTorch left it unchanged, auxl moved it {moved:.3e} of its norm")
            continue
        rel = np.linalg.norm(update_auxl - update_torch) / scale
        lines.append(f"  {what} {aname:<26} |update| {scale:.3e}  relative difference {rel:.2e}")
        if not (rel < TOLERANCE and np.isfinite(update_auxl).all()):
            failures.append(f"{what} {aname}: relative difference {rel:.3e} (|update| {scale:.3e})")
    return failures, lines


def compare_hypergradient(out, hyper_torch):
    """Module-aware's upper level: the clipped hypergradient ∇_ω of its last upper step (3 Neumann
    terms of Hessian-vector products on the dev set), one value per trunk module, as one vector.
    ω itself moves by 1e-3 of it, below float32's resolution at ω = 1, so ∇_ω is what is compared."""
    auxl = np.load(os.path.join(out, "hypergradient.npy"))
    torch_side = hyper_torch.double().numpy()
    scale = np.linalg.norm(torch_side)
    rel = np.linalg.norm(auxl - torch_side) / scale if scale > 0 else float("inf")
    print(f"  upper level: hypergradient {np.array2string(torch_side, precision=4)} (PyTorch), relative difference {rel:.2e}")
    return [] if rel < TOLERANCE else [f"hypergradient: relative difference {rel:.3e} (|PyTorch's| {scale:.3e})"]


def compare_upper_gradient(out, generators, state):
    """DTG's last upper gradient (clipped; PyTorch leaves it in .grad): each generator's as one
    vector, and ∇_ω; returns the differences over TOLERANCE.  (Adam's first steps move by about
    lr · sign(g), so the parameters alone would hide an error in the gradient's size.)"""
    failures = []
    for what, module in (("feature", generators[0]), ("label", generators[1])):
        segments = state[what][3]
        auxl = np.load(os.path.join(out, f"{what}_gradient.npy")).astype(np.float64)
        auxl = np.concatenate([auxl[o:o + int(np.prod(shape))] for _, o, shape in segments])
        torch_side = np.concatenate([p.grad.double().numpy().ravel() for p in module.parameters()])
        scale = np.linalg.norm(torch_side)
        rel = np.linalg.norm(auxl - torch_side) / scale if scale > 0 else float("inf")
        print(f"  upper level: {what} generator's gradient |g| {scale:.3e}, relative difference {rel:.2e}")
        if not rel < TOLERANCE:
            failures.append(f"{what} generator's upper gradient: relative difference {rel:.3e} (|g| {scale:.3e})")
    auxl_w = np.load(os.path.join(out, "manual_weight_gradient.npy")).astype(np.float64)
    torch_w = generators[2].grad.double().numpy()
    rel = np.linalg.norm(auxl_w - torch_w) / np.linalg.norm(torch_w)
    print(f"  upper level: manual weight's gradient {torch_w[0]:.4e} (PyTorch), relative difference {rel:.2e}")
    if not rel < TOLERANCE:
        failures.append(f"manual weight's upper gradient: relative difference {rel:.3e}")
    return failures


def compare_initialisation(module, flat, segments, what):
    """The study's runs share no random draws between the libraries, only their distributions:
    each tensor's initial values in auxl (`flat`) against PyTorch's fresh ones (`module`, before
    auxl's are loaded), mean and standard deviation within 5 standard errors of two independent
    samples (uniform: sd(s)/s = sqrt(0.2/n); normal: sqrt(0.5/n)), for tensors of 16 values or
    more.  Zero tensors must be zero in both."""
    failures, lines = [], []
    for (tname, p), (aname, offset, shape) in zip(module.named_parameters(), segments):
        n = int(np.prod(shape))
        a = flat[offset:offset + n].astype(np.float64)
        t = p.detach().double().numpy().ravel()
        sa, st = a.std(), t.std()
        if st == 0 or sa == 0:
            ok = sa == st and not a.any() and not t.any()
            lines.append(f"  {what} {aname:<26} initial std auxl {sa:.4f}, PyTorch {st:.4f}")
        elif n < 16:  # two biases of a 2-class head say nothing about a distribution
            ok = True
            lines.append(f"  {what} {aname:<26} initial std auxl {sa:.4f}, PyTorch {st:.4f} (n {n}: too few to compare)")
        else:
            ok = abs(sa / st - 1) < 5 * np.sqrt(1.0 / n) and abs(a.mean() - t.mean()) < 5 * st * np.sqrt(2.0 / n)
            lines.append(f"  {what} {aname:<26} initial std auxl {sa:.4f}, PyTorch {st:.4f} (ratio {sa / st:.3f}, n {n})")
        if not ok:
            failures.append(lines[-1].strip() + ": not the same distribution")
    return failures, lines


def check(binary, work, method, model, verbose, flags=None, epochs=0, hierarchy="super5", lr=0.01, batch=BATCH,
          rows=FIT_ROWS):
    """Trains auxl, repeats in PyTorch, compares; epochs > 0: through fit() with the schedule."""
    flags = AUXL_FLAGS.get(method, []) if flags is None else flags
    if epochs:
        flags = flags + ["--epochs", str(epochs), "--rows", str(rows), "--init", "pytorch"]
    if (hierarchy, lr, batch) != ("super5", 0.01, BATCH):
        flags = flags + ["--hierarchy", hierarchy, "--lr", str(lr), "--batch", str(batch)]
    out = os.path.join(work, f"{method}_{model}" + "".join(flags).replace("-", "_"))
    steps = STEPS_OF.get(method, STEPS)
    subprocess.run([binary, "--method", method, "--model", model, "--steps", str(steps), "--batch", str(batch),
                    "--out", out] + flags, check=True)
    dtype = REFERENCE_DTYPE.get(method, torch.float32)
    x = torch.from_numpy(np.load(os.path.join(out, "inputs.npy"))).view(-1, 1, 28, 28).to(dtype)
    y = torch.from_numpy(np.load(os.path.join(out, "primary.npy")).astype(np.int64))
    dev = DevRows(torch.from_numpy(np.load(os.path.join(out, "dev_inputs.npy"))).view(-1, 1, 28, 28).to(dtype),
                  torch.from_numpy(np.load(os.path.join(out, "dev_primary.npy")).astype(np.int64)))
    # auxl's human labels are the fine classes renumbered in ψ's block order (each primary class's
    # fine classes adjacent, as MAXL's generated classes are); PyTorch's reference trains on the
    # fine class itself.  Only the order of the auxiliary head's rows differs, so it gets auxl's.
    fine = torch.from_numpy(np.load(os.path.join(out, "human.npy")).astype(np.int64))

    torch.manual_seed(1)
    torch.set_default_dtype(dtype)  # the networks and every tensor the step makes
    try:
        net, opt, step = make_step(method, model, primary_classes=PRIMARY_CLASSES[hierarchy], lr=lr, weight_decay=5e-4,
                                   aux_weight=1.0, dev=dev)
    finally:
        torch.set_default_dtype(torch.float32)
    parts = [("model", net)]
    if os.path.exists(os.path.join(out, "generator_before.npy")):
        parts.append(("generator", step.generator))
    if os.path.exists(os.path.join(out, "feature_before.npy")):
        parts += [("feature", step.generators[0]), ("label", step.generators[1])]
    if os.path.exists(os.path.join(out, "policy_before.npy")):
        parts.append(("policy", step.policy))
    actions = None
    if os.path.exists(os.path.join(out, "rl_labels.npy")):  # auxl's draws, replayed
        actions = (torch.from_numpy(np.load(os.path.join(out, "rl_labels.npy")).astype(np.int64)),
                   torch.from_numpy(np.load(os.path.join(out, "rl_bins.npy")).astype(np.int64)))
    state, init_failures, init_lines = {}, [], []
    for what, module in parts:
        segments = read_segments(os.path.join(out, f"{what}_segments.txt"))
        before = np.load(os.path.join(out, f"{what}_before.npy"))
        after = np.load(os.path.join(out, f"{what}_after.npy"))
        if what != "model" or "pytorch" in flags:  # the generators always start as in the study
            f, lines = compare_initialisation(module, before, segments, what)
            init_failures += [f"{method}/{model} {line}" for line in f]
            init_lines += lines
        load_into(module, before, segments, f"{method}/{model} {what}")
        state[what] = (module, before, after, segments)
    if epochs:
        order = torch.from_numpy(np.load(os.path.join(out, "order.npy")).astype(np.int64))
        if tuple(order.shape) != (epochs, x.shape[0]):
            raise SystemExit(f"{out}/order.npy is {tuple(order.shape)}, expected ({epochs}, {x.shape[0]})")
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=0.0)  # as torch_study
        for e in range(epochs):
            for b in range(0, x.shape[0], batch):
                rows = order[e, b:b + batch]
                step(x[rows], y[rows], fine[rows])
            sched.step()
    else:
        for s in range(steps):
            rows = slice(s * batch, (s + 1) * batch)
            if actions is None:
                step(x[rows], y[rows], fine[rows])
            else:
                step(x[rows], y[rows], fine[rows], actions=(actions[0][s], actions[1][s]))
    failures = init_failures
    print(f"{method} {model}" + "".join(" " + f for f in flags) + (" (PyTorch in float64)" if dtype != torch.float32 else "") + ":")
    if verbose:
        print("\n".join(init_lines))
    if hasattr(step, "generators"):
        failures += [f"{method}/{model} {line}" for line in compare_upper_gradient(out, step.generators, state)]
    if hasattr(step, "state"):
        failures += [f"{method}/{model} {line}" for line in compare_hypergradient(out, step.state["hypergradient"])]
    for what, (module, before, after, segments) in state.items():
        f, lines = compare(module, before, after, segments, what)
        failures += [f"{method}/{model} {line}" for line in f]
        compared = [line for line in lines if "relative difference" in line]
        worst = max(compared, key=lambda line: float(line.rsplit(" ", 1)[1]))
        print("\n".join(lines) if verbose else f"  {what}: largest{worst[len(what) + 2:]}")
    return failures


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    binary, work, verbose = sys.argv[1], sys.argv[2], "--verbose" in sys.argv[3:]
    torch.set_num_threads(1)
    failures = []
    for model in MODELS:
        for method in METHODS:
            failures += check(binary, work, method, model, verbose)
    for model in MODELS:
        for method in FIT_METHODS:
            failures += check(binary, work, method, model, verbose, epochs=FIT_EPOCHS)
    failures += check(binary, work, "maxl+equal", "mlp", verbose, **STUDY_SETTING)
    for model in MODELS:  # exact products from the study's initialisation (torch.nn's) too
        failures += check(binary, work, "human+module_aware", model, verbose, flags=["--init", "pytorch"])
    print("measured, not asserted: module-aware with central differences (--hvp central) at 0.01, the default "
          "before exact products, and at 1e-4 from the study's initialisation, where the CNN's miss at every step tried")
    for model in MODELS:
        check(binary, work, "dtg", model, verbose, flags=["--hvp", "central", "--hvp-step", "0.01"])
        check(binary, work, "human+module_aware", model, verbose, flags=["--hvp", "central", "--hvp-step", "0.01"])
        check(binary, work, "human+module_aware", model, verbose,
              flags=["--hvp", "central", "--hvp-step", "1e-4", "--init", "pytorch"])
    print("measured, not asserted: MAXL on the CNN at the study's half2 setting (float32 pooling near-ties, see STUDY_SETTING)")
    check(binary, work, "maxl+equal", "cnn", verbose, **STUDY_SETTING)
    if failures:
        print("the libraries' updates differ:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"every update agrees within {TOLERANCE:g} (relative), {len(METHODS)} methods x {len(MODELS)} models, "
          f"and {len(FIT_METHODS)} x {len(MODELS)} through fit() over {FIT_EPOCHS} cosine-scheduled epochs, "
          f"MAXL at the study's half2 setting on the MLP")


if __name__ == "__main__":
    main()
