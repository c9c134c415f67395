#!/usr/bin/env python3
"""benchmarks/epoch_memory.py with stand-in drivers: each stand-in touches a known number of
megabytes for the composition it is asked for, so the peaks the script reports (each child's
own, not the largest child's so far), its "over STL" columns and its CSV can be checked; a driver
that fails stops the script with exit code 1 naming the command and the end of its output.
Standard library only."""
import csv
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "benchmarks", "epoch_memory.py")

# A stand-in for both drivers: finds --methods, touches MB[method] megabytes (written, so resident),
# checks the one-epoch, one-seed arguments, and fails on demand.
STAND_IN = r'''#!{python}
import sys
args = sys.argv[1:]
method = args[args.index("--methods") + 1]
assert args[args.index("--epochs") + 1] == "1" and args[args.index("--seeds") + 1] == "1", args
if method == "broken":
    print("stand-in: the data set is missing")
    sys.exit(3)
mb = {{"stl": 20, "human+equal": 60, "dtg": {dtg}}}[method]
block = b"\x01" * (mb << 20)
print("trained", method, len(block))
'''


def stand_in(path, dtg_mb):
    with open(path, "w") as f:
        f.write(STAND_IN.format(python=sys.executable, dtg=dtg_mb))
    os.chmod(path, 0o755)
    return path


def run(*args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


with tempfile.TemporaryDirectory() as root:
    demo = stand_in(os.path.join(root, "demo"), 100)
    torch_study = stand_in(os.path.join(root, "torch_study"), 140)
    table = os.path.join(root, "memory.csv")
    base = ["--demo", demo, "--torch-study", torch_study, "--python", sys.executable]

    # "stl" is put first whatever the order asked for: the other rows are measured against it.
    code, out, err = run(*base, "--models", "mlp", "--methods", "dtg,human+equal,stl", "--csv", table)
    assert code == 0, (code, out, err)
    lines = [l for l in out.splitlines() if l.startswith("mlp ")]
    assert [l.split()[1] for l in lines] == ["stl", "dtg", "human+equal"], out
    with open(table) as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["stl", "dtg", "human+equal"], rows
    for method, (auxl_mb, torch_mb) in {"stl": (20, 20), "human+equal": (60, 60), "dtg": (100, 140)}.items():
        r = rows[method]
        # Each child's own peak: the interpreter's own few MB on top of what it touched.  Had the
        # script read the largest child so far (RUSAGE_CHILDREN), stl after dtg would show 140.
        assert auxl_mb <= float(r["auxl_mb"]) < auxl_mb + 40, (method, r)
        assert torch_mb <= float(r["torch_mb"]) < torch_mb + 40, (method, r)
        assert abs(float(r["torch_over_auxl"]) - float(r["torch_mb"]) / float(r["auxl_mb"])) < 1e-9, r
    assert float(rows["stl"]["auxl_over_stl_mb"]) == 0.0 and float(rows["stl"]["torch_over_stl_mb"]) == 0.0, rows
    for method, added in {"human+equal": 40, "dtg": 80}.items():
        over = float(rows[method]["auxl_over_stl_mb"])
        assert added - 8 < over < added + 8, (method, over)
    assert 120 - 8 < float(rows["dtg"]["torch_over_stl_mb"]) < 120 + 8, rows["dtg"]

    # A driver that fails: exit 1, the command and its last words named, nothing half-written.
    broken_csv = os.path.join(root, "broken.csv")
    code, out, err = run(*base, "--models", "mlp", "--methods", "stl,broken", "--csv", broken_csv)
    assert code == 1, (code, out, err)
    assert "--methods broken" in err and "exited with 3" in err and "the data set is missing" in err, err
    assert not os.path.exists(broken_csv), "no CSV after a failed measurement"

    # No demo binary: a message saying how to build it.
    code, out, err = run("--demo", os.path.join(root, "nowhere"), "--methods", "stl")
    assert code == 1 and "cmake --build build --target fashion_hierarchy" in err, (code, err)

print("epoch_memory: per-child peaks, over-STL columns, CSV and failures as expected")
