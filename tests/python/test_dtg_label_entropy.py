#!/usr/bin/env python3
"""scripts/dtg_label_entropy.py on generated run logs: the shares it prints are the entropies over
log psi computed here, runs short of --epochs and DTG variants (_dtgfollow, _central) and PyTorch
directories are left out, and a truncated CSV stops it with exit code 1 naming the file.
Standard library only."""
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "dtg_label_entropy.py")


def run_log(root, directory, name, entropies, weight=1.5):
    d = os.path.join(root, directory)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w") as f:
        f.write("run,epoch,step,dtg_label_entropy,dtg_manual_weight1\n")
        for epoch, h in enumerate(entropies, start=1):
            f.write(f"dtg/seed1,{epoch},{epoch * 10},{h},{weight if epoch == len(entropies) else 1.0}\n")


def run(*args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


with tempfile.TemporaryDirectory() as root:
    log5, log2 = math.log(5), math.log(2)
    run_log(root, "half2_mlp_n300", "half2_mlp_dtg_seed1.csv", [0.9 * log5] + [log5] * 19, weight=1.25)
    run_log(root, "half2_mlp_n300_seeds2-2", "half2_mlp_dtg_seed2.csv", [0.8 * log5] + [0.99 * log5] * 19, weight=1.5)
    run_log(root, "half2_mlp_n300_seeds3-3", "half2_mlp_dtg_seed3.csv", [0.1] * 5)  # in progress: left out
    run_log(root, "super5_cnn_n1000", "super5_cnn_dtg_seed1.csv", [0.5 * log2] * 20)
    run_log(root, "super5_cnn_n1000_dtgfollow", "super5_cnn_dtg_seed1.csv", [0.0] * 20)  # a variant: left out
    run_log(root, "super5_cnn_n1000_central", "super5_cnn_dtg_seed1.csv", [0.0] * 20)
    code, out, err = run(root)
    assert code == 0, (code, err)
    lines = out.splitlines()
    assert "| half2, MLP, 300 | 2 | 0.800–0.900 | 0.9900–1.0000 | 1.25–1.50 |" in lines, out
    assert "| super5, CNN, 1,000 | 1 | 0.500–0.500 | 0.5000–0.5000 | 1.50–1.50 |" in lines, out
    assert sum(line.startswith("|") for line in lines) == 4, out  # header, rule and the two settings
    assert "(1 run(s) short of 20 epochs left out)" in out, out
    code, out, _ = run(root, "--epochs", "5")
    assert "| half2, MLP, 300 | 3 |" in out, out

    with open(os.path.join(root, "half2_mlp_n300", "half2_mlp_dtg_seed1.csv"), "a") as f:
        f.write("dtg/seed1,21,210,0.5\n")  # a truncated last row: no manual weight
    code, out, err = run(root)
    assert code == 1 and "half2_mlp_dtg_seed1.csv" in err and "last row has 4 of 5 fields" in err, (code, out, err)
    os.remove(os.path.join(root, "half2_mlp_n300", "half2_mlp_dtg_seed1.csv"))
    run_log(root, "parity2_mlp_n300", "parity2_mlp_dtg_seed1.csv", [0.5] * 19 + ["x"])  # not a number
    code, out, err = run(root)
    assert code == 1 and "parity2_mlp_dtg_seed1.csv" in err and "not a DTG run log" in err, (code, out, err)

with tempfile.TemporaryDirectory() as empty:
    code, _, err = run(empty)
    assert code == 1 and "no DTG run CSVs" in err, (code, err)
print("dtg_label_entropy: ok")
