#!/usr/bin/env python3
"""benchmarks/torch_study.py --resume and --time-limit on a small generated Fashion-MNIST.

1. train_one, for every method with state of its own: one run straight through; the same run
   stopped after every single step (a deadline in the past) and continued from its state file,
   again and again, until it finishes.  The final network, optimizer and step state (MAXL's
   generator, RL-AUX-w's policy and rollout, DTG's generators, module-aware's importances) must
   be bitwise the straight run's.
2. The command line: --time-limit stops with exit code 75 and the same command continues; the
   finished setting's CSVs equal a straight run's, and a stopped one lists its finished runs'
   accuracies in partial_runs_*.csv; a finished state is not trained again; another
   learning rate or OpenBLAS kernel on the same state, a corrupt run record and a foreign state file are refused.
Exit 77 (skip) without PyTorch (scripts/setup.sh --torch installs it)."""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(77)
HERE = os.path.dirname(os.path.abspath(__file__))
STUDY = os.path.join(HERE, "..", "..", "benchmarks", "torch_study.py")
sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks"))
sys.path.insert(0, HERE)
import torch_study  # noqa: E402
from fake_fashion import write_fake_fashion_mnist  # noqa: E402

torch.set_num_threads(1)


def same(a, b, where="state"):
    """Bitwise equality of nested state (dicts, lists, tensors, numbers)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {a.keys()} vs {b.keys()}"
        for k in a:
            same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a} vs {b}"


with tempfile.TemporaryDirectory() as d:
    data = os.path.join(d, "data")
    write_fake_fashion_mnist(data, 12, 5)
    (train_x, train_fine), (test_x, test_fine) = torch_study.load_fashion_mnist(data)

    # 1. train_one stopped after every step.  100 rows in batches of 16: 7 steps per epoch (6 on
    # the dev methods' 95 rows, the last one short); module-aware's upper step comes every 20 steps,
    # so its 7 epochs take two (the second uses the velocity the first left).
    for method, epochs in (("stl", 2), ("maxl+equal", 2), ("rl_aux_w+equal", 2), ("human+module_aware", 7), ("dtg", 2)):
        common = (method, "mlp", "half2", train_x[:100], train_fine[:100], test_x, test_fine, 5, epochs, 16, 0.05, 1.0)
        straight_state = os.path.join(d, f"{method}_straight.pt")
        straight = torch_study.train_one(*common, state_path=straight_state)
        stopped_state = os.path.join(d, f"{method}_stopped.pt")
        stops = 0
        while True:
            try:
                stopped = torch_study.train_one(*common, state_path=stopped_state, deadline=0.0)
                break
            except torch_study.TimeLimitReached:
                stops += 1
                assert stops < 200, f"{method}: no progress"
        a, b = torch.load(straight_state), torch.load(stopped_state)
        for key in ("net", "opt", "sched", "stateful", "steps", "epoch", "order", "torch_rng"):
            same(a[key], b[key], f"{method}: {key}")
        assert a["epoch"] == epochs and stops == a["steps"] - 1, (method, a["epoch"], stops, a["steps"])
        assert stopped["accuracy"] == straight["accuracy"] and not stopped["diverged"]
        assert stopped["seconds_per_epoch"] > 0
        if method == "human+module_aware":  # its upper step ran (the hypergradient is in the state)
            assert "hypergradient" in b["stateful"]["state"], b["stateful"]["state"].keys()
        print(f"{method}: stopped after each of {stops} steps, resumed: final state bitwise the straight run's")

    # 2. The command line.
    out, state = os.path.join(d, "study"), os.path.join(d, "state")
    common = ["--hierarchies", "half2", "--sizes", "60", "--models", "mlp", "--seeds", "1", "--epochs", "2", "--batch", "32",
              "--threads", "1", "--data", data, "--methods", "stl,maxl+equal"]

    def run(*args, env=None):
        return subprocess.run([sys.executable, STUDY, *args], capture_output=True, text=True, timeout=600, env=env)

    straight = run(os.path.join(d, "straight"), *common)
    assert straight.returncode == 0, straight.stderr
    cli_stops, partial_seen = 0, {}
    setting = "half2_mlp_n60_torch"
    partial = os.path.join(out, setting, "partial_runs_half2_mlp.csv")
    while True:
        done = run(out, *common, "--resume", state, "--time-limit", "0")
        if done.returncode == 0:
            break
        assert done.returncode == 75 and "time limit reached" in done.stdout, done.stdout + done.stderr
        cli_stops += 1
        assert cli_stops < 30, "the stopped runs make no progress"
        # the stopped command lists the accuracy of each run it finished, and of no other
        finished = {n[:-len("_seed1.json")] for n in os.listdir(os.path.join(state, setting)) if n.endswith(".json")}
        listed = {}
        if os.path.exists(partial):
            with open(partial, newline="") as f:
                listed = {r["method"]: r["accuracy"] for r in csv.DictReader(f)}
        assert set(listed) == finished, (listed, finished)
        assert not os.path.exists(os.path.join(out, setting, "summary_half2_mlp.csv"))
        partial_seen.update(listed)
    # 60 rows in batches of 32: 2 steps per epoch, 4 per method; each method stops after 3 of them.
    assert cli_stops == 6, f"{cli_stops} stops, not 6"
    assert list(partial_seen) == ["stl"] and not os.path.exists(partial), partial_seen
    with open(os.path.join(out, setting, "runs_half2_mlp.csv"), newline="") as f:
        assert {r["method"]: r["accuracy"] for r in csv.DictReader(f)}["stl"] == partial_seen["stl"]
    for name in ("runs_half2_mlp.csv",):
        assert open(os.path.join(d, "straight", setting, name)).read() == open(os.path.join(out, setting, name)).read(), name
    print(f"command line: {cli_stops} stops, then the same accuracies as a straight run")

    shutil.rmtree(os.path.join(out, setting))
    again = run(out, *common, "--resume", state)
    assert again.returncode == 0 and again.stdout.count("[finished earlier]") == 2, again.stdout

    def snapshot():
        return {os.path.join(r, f): open(os.path.join(r, f), "rb").read() for r, _, fs in os.walk(state) for f in fs}

    before = snapshot()
    other = run(out, *common, "--resume", state, "--lr", "0.1")
    assert other.returncode != 0 and "holds runs of another configuration" in other.stderr and '"lr": 0.1' in other.stderr, \
        other.stderr
    assert "only OpenBLAS's kernel differs" not in other.stderr, other.stderr
    # Another OpenBLAS kernel (the state moved to another machine): refused, naming the kernel to
    # continue with (Prescott, SSE3, runs on every x86-64 CPU).
    with open(os.path.join(state, "config.json")) as f:
        kernel = json.load(f)["kernel"]
    if kernel != "no OpenBLAS":
        forced = "Nehalem" if kernel.lower() == "prescott" else "Prescott"
        other = run(out, *common, "--resume", state, env={**os.environ, "OPENBLAS_CORETYPE": forced})
        assert other.returncode != 0 and f'"kernel": "{forced}"' in other.stderr \
            and f"OPENBLAS_CORETYPE={kernel} " in other.stderr and "only OpenBLAS's kernel differs" in other.stderr, other.stderr
        print(f"another OpenBLAS kernel ({forced}, state made with {kernel}): refused, naming the kernel")
    assert snapshot() == before
    # Runs made by other code (config.json's last "code" id another, or none recorded): refused,
    # naming both; --accept-code-change continues them and appends this code's id.
    config_path = os.path.join(state, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    this_code = config["code"]
    assert len(this_code) == 1 and this_code[0].startswith("torch_study sources "), config
    for recorded, named in ((["torch_study sources 000000000000"], "sources 000000000000"), (None, "not recorded")):
        changed = {k: v for k, v in config.items() if k != "code"}
        if recorded:
            changed["code"] = recorded
        with open(config_path, "w") as f:
            json.dump(changed, f)
        before = snapshot()
        refused = run(out, *common, "--resume", state)
        assert refused.returncode != 0 and "made by other code" in refused.stderr and named in refused.stderr \
            and this_code[0] in refused.stderr and "--accept-code-change" in refused.stderr, refused.stderr
        assert snapshot() == before
    with open(config_path, "w") as f:
        json.dump({**config, "code": ["torch_study sources 000000000000"]}, f)
    accepted = run(out, *common, "--resume", state, "--accept-code-change")
    assert accepted.returncode == 0 and "--accept-code-change: continuing runs made by torch_study sources 000000000000" \
        in accepted.stdout, accepted.stdout + accepted.stderr
    with open(config_path) as f:
        assert json.load(f)["code"] == ["torch_study sources 000000000000", this_code[0]]
    again = run(out, *common, "--resume", state)
    assert again.returncode == 0, again.stderr
    with open(config_path) as f:
        good = f.read()
    with open(config_path, "w") as f:
        json.dump({**config, "code": "torch_study sources 000000000000"}, f)  # a string, not a list
    before = snapshot()
    bad = run(out, *common, "--resume", state)
    assert bad.returncode != 0 and '"code" is not a list of code ids' in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert snapshot() == before
    with open(config_path, "w") as f:
        f.write(good)
    print("runs made by other code: refused, and continued with --accept-code-change; a malformed code list: refused")
    record = os.path.join(state, setting, "maxl+equal_seed1.json")
    with open(record, "w") as f:
        f.write('{"accuracy": 0.5, "diverged": false')
    before = snapshot()
    shutil.rmtree(os.path.join(out, setting))  # a finished setting is skipped before its records are read
    broken = run(out, *common, "--resume", state)
    assert broken.returncode != 0 and "cannot read the run record" in broken.stderr and "Traceback" not in broken.stderr, \
        broken.stderr
    assert snapshot() == before
    # A state file of another run (another seed) in this run's place: refused, naming both.
    os.remove(record)
    shutil.copy(os.path.join(d, "stl_straight.pt"), os.path.join(state, setting, "maxl+equal_seed1.pt"))
    foreign = run(out, *common, "--resume", state)
    assert foreign.returncode != 0 and "is the state of another run" in foreign.stderr, foreign.stderr
    alone = run(out, *common, "--time-limit", "5")
    assert alone.returncode != 0 and "--time-limit needs --resume" in alone.stderr, alone.stderr
    print("another configuration, a corrupt record, a foreign state file, --time-limit alone: refused")
print("test_torch_study_resume: all checks passed")
