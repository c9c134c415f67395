#!/usr/bin/env python3
"""benchmarks/torch_reference.py, the PyTorch side of the side-by-side benchmark and of the
accuracy study: every method runs, stays finite and learns a small separable problem (the
primary loss on the training batch falls to under half its start within 60 steps); RL-AUX
updates its policy after a rollout, DTG its generators and the manual task's weight; DTG's
generators follow the network's rate when asked (dtg_follow_schedule); set_threads reaches
OpenBLAS's pool, not only PyTorch's; dtg_dead_units counts alive generator units and
torch_study.train_one's on_step hook can end a run early.
Exit 77 (skip) without PyTorch (scripts/setup.sh --torch installs it)."""
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(77)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks"))
from torch_reference import HIERARCHIES, DevRows, blas_kernel, make_step, set_threads  # noqa: E402
import dtg_dead_units  # noqa: E402
import torch_study  # noqa: E402

torch.set_num_threads(1)
METHODS = ["stl", "human+equal", "human+cosine", "human+module_aware", "human+transference", "maxl+equal",
           "rl_aux+equal", "rl_aux_w+equal", "dtg"]

# Ten fine classes, each a random prototype image plus noise; primary = super5 of the fine class.
g = torch.Generator().manual_seed(7)
prototypes = torch.rand(10, 1, 28, 28, generator=g)
fine = torch.arange(128) % 10
x = (0.5 * prototypes[fine] + 0.5 * torch.rand(128, 1, 28, 28, generator=g))
to_primary = torch.tensor(HIERARCHIES["super5"])
y = to_primary[fine]
dev_fine = torch.arange(64) % 10
dev = DevRows(0.5 * prototypes[dev_fine] + 0.5 * torch.rand(64, 1, 28, 28, generator=g), to_primary[dev_fine])

failures = []
for method in METHODS:
    torch.manual_seed(1)
    net, opt, step = make_step(method, "mlp", primary_classes=5, lr=0.01, dev=dev)
    with torch.no_grad():
        start = F.cross_entropy(net(x)[0], y).item()
    before = [p.detach().clone() for p in getattr(step, "policy", torch.nn.Linear(1, 1)).parameters()]
    for _ in range(60):
        step(x, y, fine)
    with torch.no_grad():
        end = F.cross_entropy(net(x)[0], y).item()
    finite = all(torch.isfinite(p).all().item() for p in net.parameters())
    ok = finite and end < 0.5 * start
    detail = f"primary loss {start:.3f} -> {end:.3f}"
    if hasattr(step, "policy"):
        moved = max((p - b).abs().max().item() for p, b in zip(step.policy.parameters(), before))
        ok = ok and moved > 0
        detail += f", policy moved by up to {moved:.2e}"
    if hasattr(step, "generators"):
        g_feat, g_label, omega = step.generators
        last = g_feat[2].weight.abs().max().item()  # zero at the start: x~ = x
        ok = ok and last > 0 and omega.item() != 1.0
        detail += f", feature generator's last layer up to {last:.2e}, manual weight {omega.item():.4f}"
    print(f"{method:20} {'ok  ' if ok else 'FAIL'} {detail}")
    if not ok:
        failures.append(method)

# dtg_follow_schedule: the generators' Adam rates take the network's factor (current / initial lr).
# With the network's rate set to 0 after 10 steps, the generators and omega stop moving when they
# follow it, and keep moving (regulariser, hypergradient) when they do not.
def generators_after_zero_rate(follow):
    torch.manual_seed(1)
    net, opt, step = make_step("dtg", "mlp", primary_classes=5, lr=0.01, dev=dev, dtg_follow_schedule=follow)
    for _ in range(10):
        step(x, y, fine)
    g_feat, g_label, omega = step.generators
    frozen = [p.detach().clone() for p in list(g_feat.parameters()) + list(g_label.parameters()) + [omega]]
    opt.param_groups[0]["lr"] = 0.0
    for _ in range(5):
        step(x, y, fine)
    now = list(g_feat.parameters()) + list(g_label.parameters()) + [omega]
    return max((p - b).abs().max().item() for p, b in zip(now, frozen))


moved_following, moved_constant = generators_after_zero_rate(True), generators_after_zero_rate(False)
ok = moved_following == 0.0 and moved_constant > 0
print(f"{'dtg follow schedule':20} {'ok  ' if ok else 'FAIL'} at network lr 0 the generators moved by "
      f"{moved_following:.2e} following it, {moved_constant:.2e} with constant rates")
if not ok:
    failures.append("dtg follow schedule")
# dtg_dead_units.alive_units counts the hidden units positive on at least one probe row: biases of -1000
# kill units (every input lies in [0, 1] and every weight within 1/sqrt(fan-in)), +1000 keeps them.
torch.manual_seed(1)
_, _, dtg = make_step("dtg", "mlp", primary_classes=5, lr=0.01, dev=dev)
g_feat, g_label, _ = dtg.generators
with torch.no_grad():
    g_feat[0].bias.copy_(torch.where(torch.arange(128) < 10, -1000.0, 1000.0))
    g_label[0].bias.copy_(torch.where(torch.arange(128) % 4 == 0, -1000.0, 1000.0))
    g_feat[0].weight[10].zero_()  # unit 10 is positive on primary class 0's rows only: alive
    g_feat[0].weight[10, 784] = 1.0
    g_feat[0].bias[10] = -0.5
alive = dtg_dead_units.alive_units(g_feat, g_label, x, y, 5)
ok = alive == (118, 96)
print(f"{'dtg alive units':20} {'ok  ' if ok else 'FAIL'} {alive} alive, 118 and 96 expected")
if not ok:
    failures.append("dtg alive units")
# dtg_dead_units.label_measures: a label generator with a zero last layer gives every example the
# uniform label of its block (entropy share 1, no information); one whose label follows pixel 0
# (hidden unit 0 = pixel 0, logits +-(40 x0 - 20) on a block's two classes) splits each class's
# examples between its two labels, so the label says much about the example (log 2 = 0.69 at most).
torch.manual_seed(1)
_, _, dtg = make_step("dtg", "mlp", primary_classes=5, lr=0.01, dev=dev)
g_feat, g_label, _ = dtg.generators
with torch.no_grad():
    g_label[2].weight.zero_()
    g_label[2].bias.zero_()
uniform = dtg_dead_units.label_measures(g_feat, g_label, x, y, 5)
with torch.no_grad():
    g_label[0].weight.zero_()
    g_label[0].bias.zero_()
    g_label[0].weight[0, 0] = 1.0
    sign = torch.where(torch.arange(10) % 2 == 0, 1.0, -1.0)
    g_label[2].weight[:, 0] = 40.0 * sign
    g_label[2].bias.copy_(-20.0 * sign)
split = dtg_dead_units.label_measures(g_feat, g_label, x, y, 5)
ok = abs(uniform[0] - 1) < 1e-9 and abs(uniform[1]) < 1e-9 and split[0] < 0.5 and split[1] > 0.2
print(f"{'dtg label measures':20} {'ok  ' if ok else 'FAIL'} uniform labels {uniform}, split labels {split}")
if not ok:
    failures.append("dtg label measures")
# torch_study.train_one's on_step hook sees step 0 and every step after it, and a True ends the run.
seen = []
result = torch_study.train_one("stl", "mlp", "super5", x, fine, x, fine, 1, 2, 32, 0.05, 1.0,
                               on_step=lambda steps, step: seen.append(steps) or steps >= 3)
ok = seen == [0, 1, 2, 3] and 0 <= result["accuracy"] <= 1
print(f"{'train_one on_step':20} {'ok  ' if ok else 'FAIL'} called at steps {seen}, [0, 1, 2, 3] expected")
if not ok:
    failures.append("train_one on_step")
# set_threads: torch.set_num_threads does not reach the OpenBLAS pool Debian's torch multiplies on.
blas_one, blas_two = set_threads(1), set_threads(1, 2)
blas_back = set_threads(1)
ok = torch.get_num_threads() == 1 and (blas_one, blas_two, blas_back) in ((1, 2, 1), (None, None, None))
print(f"{'set_threads':20} {'ok  ' if ok else 'FAIL'} OpenBLAS threads {blas_one}, then {blas_two} when asked, "
      f"then {blas_back} (None: no OpenBLAS loaded)")
if not ok:
    failures.append("set_threads")
# blas_kernel: the kernel name the study's run log records (OpenBLAS loaded: the one it reports).
kernel = blas_kernel()
ok = isinstance(kernel, str) and kernel != "" and (blas_one is None) == (kernel == "no OpenBLAS")
print(f"{'blas_kernel':20} {'ok  ' if ok else 'FAIL'} {kernel}")
if not ok:
    failures.append("blas_kernel")
if failures:
    sys.exit(f"torch_reference: {', '.join(failures)} failed")
print(f"{len(METHODS)} of {len(METHODS)} PyTorch reference methods run, stay finite and learn")
