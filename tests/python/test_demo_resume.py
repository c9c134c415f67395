#!/usr/bin/env python3
"""fashion_hierarchy --resume DIR --time-limit S: a study run stopped over and over continues bit
for bit.  One run goes straight through; the same command with --time-limit 0 stops after every
single step (exit 75, a checkpoint where it stands) and is started again until it finishes.  The
two must print the same accuracies and write the same per-epoch logs (times aside), and every
stop leaves the finished runs' accuracies in partial_runs_*.csv.  Then: a
changed flag or OpenBLAS kernel on the same DIR, state made by another build of the code (unless
--accept-code-change) and a corrupt run record are refused without touching DIR.

    test_demo_resume.py FASHION_HIERARCHY WORK_DIR
Exit 77 (skip) when the demo finds no Fashion-MNIST (it exits 77 itself)."""
import csv
import os
import shutil
import subprocess
import sys

demo, work = sys.argv[1], sys.argv[2]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
# Every generator with state and a rule with state: MAXL's label network, RL-AUX-w's policy and
# rollout, DTG's generators, module-aware's importances; 300 rows make 3 steps per epoch.
METHODS = "stl,stl@dev,maxl+equal,rl_aux_w+equal,human+module_aware,dtg"
COMMON = ["--train-size", "300", "--epochs", "2", "--seeds", "1", "--seed", "3", "--model", "mlp", "--threads", "1",
          "--monitor", "200", "--methods", METHODS]


def demo_run(*args, env=None):
    return subprocess.run([demo, *COMMON, *args], capture_output=True, text=True, timeout=600, env=env)


straight = demo_run("--out", os.path.join(work, "straight"))
if straight.returncode == 77:
    print("Fashion-MNIST not installed: skipped")
    sys.exit(77)
assert straight.returncode == 0, straight.stdout + straight.stderr
# The log's first line says when the command began: scripts/make_results.py orders a setting's
# directories by it (the first run of a rerun baseline seed keeps the report's row).
started = straight.stdout.split("\n", 1)[0]
assert started.startswith("started ") and started.endswith("Z") and len(started) == len("started 2026-12-07T05:11:32Z"), started

def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


state, out = os.path.join(work, "state"), os.path.join(work, "stopped")
partial = os.path.join(out, "partial_runs_half2_mlp.csv")
stops, partial_seen = 0, {}
while True:
    done = demo_run("--out", out, "--resume", state, "--time-limit", "0")
    if done.returncode == 0:
        break
    assert done.returncode == 75 and "time limit reached" in done.stdout, done.stdout + done.stderr
    stops += 1
    assert stops < 100, "the stopped runs make no progress"
    # A stopped command leaves the accuracies of its finished runs (and of no other) beside the
    # per-epoch logs, and no summary: the runs a later session cannot continue are not lost.
    finished = {n[len("half2_mlp_"):-len("_seed3.done")] for n in os.listdir(state) if n.endswith(".done")}
    listed = {r["method"]: r["accuracy"] for r in csv_rows(partial)} if os.path.exists(partial) else {}
    assert set(listed) == finished, (listed, finished)
    assert not os.path.exists(os.path.join(out, "summary_half2_mlp.csv"))
    partial_seen.update(listed)
assert len(partial_seen) == 5, partial_seen  # every method but the last was listed while it ran
assert not os.path.exists(partial), "the finished command left its partial runs CSV"
final = {r["method"]: r["accuracy"] for r in csv_rows(os.path.join(out, "runs_half2_mlp.csv"))}
assert all(final[m] == a for m, a in partial_seen.items()), (partial_seen, final)
print(f"the stopped command listed each finished run's accuracy as it finished: {sorted(partial_seen)}")
# 6 methods x 2 epochs x 3 steps (300 or 285 rows in batches of 128): a stop after every step but
# each run's last (a finished run goes on to the next run's first step, then stops): 6 x 5 = 30.
assert stops == 30, f"{stops} stops, not 30: --time-limit 0 should stop after every step"
assert "resumed at epoch" in done.stdout and "finished earlier" in done.stdout, done.stdout
print(f"{stops} stops, then finished")


def rows(path, drop=("epoch_seconds", "total_seconds")):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


a, b = os.path.join(work, "straight"), out
assert rows(os.path.join(a, "runs_half2_mlp.csv")) == rows(os.path.join(b, "runs_half2_mlp.csv")), "accuracies differ"
assert not os.path.exists(os.path.join(a, "partial_runs_half2_mlp.csv")), "the straight run left its partial runs CSV"
summary_a = rows(os.path.join(a, "summary_half2_mlp.csv"), ("seconds_per_epoch", "ms_per_step"))
summary_b = rows(os.path.join(b, "summary_half2_mlp.csv"), ("seconds_per_epoch", "ms_per_step"))
assert summary_a == summary_b, (summary_a, summary_b)
logs = sorted(f for f in os.listdir(a) if f.endswith("_seed3.csv"))
assert len(logs) == 6, logs
for name in logs:
    la, lb = rows(os.path.join(a, name)), rows(os.path.join(b, name))
    assert len(la) == 2 and la == lb, f"{name}: the per-epoch logs differ\n{la}\n{lb}"
with open(os.path.join(b, "summary_half2_mlp.csv"), newline="") as f:
    timed = [r for r in csv.DictReader(f)]
assert all(float(r["seconds_per_epoch"]) > 0 for r in timed), "a resumed run lost its training time"
print("stopped-and-resumed runs equal the straight run: accuracies, summaries, per-epoch logs")

# The finished state again: nothing is trained, the summary is the same.
again = demo_run("--out", out, "--resume", state)
assert again.returncode == 0 and again.stdout.count("finished earlier") == 6, again.stdout


def snapshot(directory):
    return {n: open(os.path.join(directory, n), "rb").read() for n in sorted(os.listdir(directory))}


# Another learning rate on the same state: refused, naming both configurations; DIR unchanged.
before = snapshot(state)
other = demo_run("--out", out, "--resume", state, "--lr", "0.1")
assert other.returncode == 2 and "holds runs of another configuration" in other.stderr and "lr 0.10000000000000001" in other.stderr, \
    other.stderr
assert snapshot(state) == before
print("another configuration on the same state: refused")

# Central-difference second-order products on state made with exact ones: refused too (the
# products change module-aware's and DTG's numbers); an unknown --hvp value is a clear error.
other = demo_run("--out", out, "--resume", state, "--hvp", "central")
assert other.returncode == 2 and "hvp central" in other.stderr and "hvp exact" in other.stderr, other.stderr
assert snapshot(state) == before
bogus = demo_run("--out", out, "--hvp", "approximate")
assert bogus.returncode == 2 and "--hvp takes exact or central, not 'approximate'" in bogus.stderr, bogus.stderr
print("other second-order products on the same state, and an unknown --hvp: refused")

# DTG's generator rate and entropy weight are part of the numbers: a changed one is refused on the
# same state (the state's config names neither, as made with the defaults), bad values are errors.
other = demo_run("--out", out, "--resume", state, "--dtg-generator-lr", "1e-4")
assert other.returncode == 2 and "dtg_generator_lr 0.0001" in other.stderr, other.stderr
other = demo_run("--out", out, "--resume", state, "--dtg-entropy-weight", "0")
assert other.returncode == 2 and "dtg_entropy_weight 0" in other.stderr, other.stderr
assert snapshot(state) == before
for flag, value, message in (("--dtg-generator-lr", "0", "--dtg-generator-lr must be positive"),
                             ("--dtg-entropy-weight", "-0.5", "--dtg-entropy-weight must be >= 0")):
    bogus = demo_run("--out", out, flag, value)
    assert bogus.returncode == 2 and message in bogus.stderr, bogus.stderr
print("another DTG generator rate or entropy weight on the same state, and bad values: refused")

# Another OpenBLAS kernel (what moving the state to another machine does): refused, and the message
# names the kernel to continue with.  Prescott (SSE3) runs on every x86-64 CPU; the Eigen backend
# has no kernel and skips this.
with open(os.path.join(state, "config.txt")) as f:
    gemm = next(line for line in f if line.startswith("gemm "))
if ", kernel " in gemm:
    kernel = gemm.split(", kernel ")[1].split(",")[0]
    forced = "Nehalem" if kernel.lower() == "prescott" else "Prescott"
    other = demo_run("--out", out, "--resume", state, env={**os.environ, "OPENBLAS_CORETYPE": forced})
    assert other.returncode == 2 and f"kernel {forced}" in other.stderr and f"OPENBLAS_CORETYPE={kernel} " in other.stderr \
        and "only OpenBLAS's kernel differs" in other.stderr, other.stderr
    assert snapshot(state) == before
    # A flag changed as well: no kernel hint, the flags come first.
    other = demo_run("--out", out, "--resume", state, "--lr", "0.1", env={**os.environ, "OPENBLAS_CORETYPE": forced})
    assert other.returncode == 2 and "only OpenBLAS's kernel differs" not in other.stderr, other.stderr
    print(f"another OpenBLAS kernel ({forced}, state made with {kernel}) on the same state: refused, naming the kernel")

# Another build of the code on the same state.  config.txt's last "code" line names the build that
# made the runs; another build is refused, naming both, unless --accept-code-change, which continues
# them and records its own id after the earlier one.  State from before builds were recorded (no
# "code" line) counts as another build.
config_path = os.path.join(state, "config.txt")
with open(config_path) as f:
    config_text = f.read()
codes = [line for line in config_text.splitlines() if line.startswith("code ")]
assert len(codes) == 1 and codes[0].startswith("code auxl ") and ", sources " in codes[0], config_text
assert config_text.endswith(codes[0] + "\n"), config_text
this_build, other_build = codes[0], "code auxl 0.0.9, sources 000000000000, GNU 1.0, Release"
for recorded, named in ((other_build, "sources 000000000000"), ("", "not recorded")):
    with open(config_path, "w") as f:
        f.write(config_text.replace(this_build + "\n", recorded + "\n" if recorded else ""))
    before = snapshot(state)
    refused = demo_run("--out", out, "--resume", state)
    assert refused.returncode == 2 and "made by another build of the code" in refused.stderr and named in refused.stderr \
        and this_build[len("code "):] in refused.stderr and "--accept-code-change" in refused.stderr, refused.stderr
    assert snapshot(state) == before
accepted = demo_run("--out", out, "--resume", state, "--accept-code-change")
assert accepted.returncode == 0 and accepted.stdout.count("finished earlier") == 6, accepted.stdout + accepted.stderr
assert "--accept-code-change: continuing runs made by (not recorded" in accepted.stdout, accepted.stdout
with open(config_path, "w") as f:
    f.write(config_text.replace(this_build, other_build))
accepted = demo_run("--out", out, "--resume", state, "--accept-code-change")
assert accepted.returncode == 0 and accepted.stdout.count("finished earlier") == 6, accepted.stdout + accepted.stderr
with open(config_path) as f:
    assert [line for line in f.read().splitlines() if line.startswith("code ")] == [other_build, this_build]
again = demo_run("--out", out, "--resume", state)  # this build made the last code line: no flag needed
assert again.returncode == 0 and again.stdout.count("finished earlier") == 6, again.stdout + again.stderr
print("state made by another build of the code: refused, and continued with --accept-code-change")

# A truncated run record: a clear error naming the file, nothing changed.
record = os.path.join(state, "half2_mlp_dtg_seed3.done")
with open(record) as f:
    text = f.read()
with open(record, "w") as f:
    f.write(text[: text.index("ms_per_step")])
before = snapshot(state)
broken = demo_run("--out", out, "--resume", state)
assert broken.returncode == 2 and "half2_mlp_dtg_seed3.done has no ms_per_step line" in broken.stderr, broken.stderr
assert snapshot(state) == before
print("a truncated run record: refused")

# --time-limit without --resume has nowhere to put the checkpoint.
alone = demo_run("--out", out, "--time-limit", "5")
assert alone.returncode == 2 and "--time-limit needs --resume" in alone.stderr, alone.stderr
print("test_demo_resume: all checks passed")
