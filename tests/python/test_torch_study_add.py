#!/usr/bin/env python3
"""benchmarks/torch_study.py --add and --aux-weight on a small generated Fashion-MNIST:
--add keeps a finished setting's runs and adds the methods it lacks; a corrupt finished setting
stops the run before any data is read or any file changes; --aux-weight writes the sweep's
directory.  Exit 77 (skip) without PyTorch (scripts/setup.sh --torch installs it)."""
import datetime
import os
import re
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401  (the generated data set needs it)
    import torch  # noqa: F401  (torch_study needs it; checked here to skip cleanly)
except ImportError:
    sys.exit(77)
HERE = os.path.dirname(os.path.abspath(__file__))
STUDY = os.path.join(HERE, "..", "..", "benchmarks", "torch_study.py")
sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks"))
import study_csv  # noqa: E402
from torch_reference import blas_kernel  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from make_results import gemm_kernel, start_times  # noqa: E402
from torch_study import accuracy_percent  # noqa: E402
sys.path.insert(0, HERE)
from fake_fashion import write_fake_fashion_mnist  # noqa: E402

# 9,590 of 10,000 right is 95.9 %, not the 95.89999999999999 that 100 * 0.959 gives.
assert [accuracy_percent(a) for a in (0.959, 0.0057, 1 / 3)] == [95.9, 0.57, 33.3333333333], "accuracy_percent"


def run(*args):
    return subprocess.run([sys.executable, STUDY, *args], capture_output=True, text=True, timeout=600)


with tempfile.TemporaryDirectory() as d:
    # 12 training and 5 test images per class: each class a bright square at its own place.
    data = os.path.join(d, "data")
    write_fake_fashion_mnist(data, 12, 5)

    out = os.path.join(d, "study")
    setting = os.path.join(out, "half2_mlp_n100_torch")
    os.makedirs(setting)
    summary_path, runs_path = (os.path.join(setting, f"{kind}_half2_mlp.csv") for kind in ("summary", "runs"))
    with open(summary_path, "w") as f:  # a finished setting with STL only (accuracies made up)
        f.write("method,runs,diverged,accuracy_mean,accuracy_std,delta_vs_stl,delta_se,seconds_per_epoch,ms_per_step,"
                "delta_vs_stl_dev,delta_dev_se\nstl,2,0,55.0,7.07,0.0,0.0,0.5,250.0,,\n")
    good_runs = "method,seed,accuracy\nstl,1,50.0\nstl,2,60.0\n"
    common = ["--hierarchies", "half2", "--sizes", "100", "--models", "mlp", "--seeds", "2", "--epochs", "2",
              "--threads", "1", "--data", data]

    # A corrupt finished setting: --add stops before reading the data (it does not exist here).
    for corrupt, fragment in (("method,seed,accuracy\nstl,1,50.0\nstl,2", "runs_half2_mlp.csv:3: line ends before column accuracy"),
                              (good_runs + "stl,3,70.0\n", "method stl has 3 runs"),
                              ("method,seed,accuracy\nstl,1,50.0\nstl,2,nan\n", "column accuracy is nan, not finite")):
        with open(runs_path, "w") as f:
            f.write(corrupt)
        before = {p: open(p).read() for p in (summary_path, runs_path)}
        done = run(out, "--add", "--methods", "stl,human+equal", *common[:-1], os.path.join(d, "absent"))
        assert done.returncode != 0 and "torch_study --add: cannot extend the finished setting" in done.stderr \
            and fragment in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert {p: open(p).read() for p in before} == before, "a rejected --add changed the setting's files"
        print(f"--add on a corrupt setting: {done.stderr.strip()}")

    # A good one: STL's runs are kept as they were, human+equal is trained on the same seeds.
    with open(runs_path, "w") as f:
        f.write(good_runs)
    done = run(out, "--add", "--methods", "stl,human+equal", *common)
    assert done.returncode == 0, done.stderr
    summary = study_csv.read_summary(summary_path)
    runs = study_csv.read_runs(runs_path)
    study_csv.check_runs_match_summary(summary_path, summary, runs_path, runs)
    assert list(summary) == ["stl", "human+equal"], summary
    assert runs["stl"] == {1: 50.0, 2: 60.0}, f"--add changed STL's runs: {runs['stl']}"
    assert float(summary["stl"]["seconds_per_epoch"]) == 0.5, "--add changed STL's timings"
    assert set(runs["human+equal"]) == {1, 2}, runs
    delta = sum(runs["human+equal"][s] - runs["stl"][s] for s in (1, 2)) / 2
    assert abs(float(summary["human+equal"]["delta_vs_stl"]) - delta) < 1e-9, (summary, runs)
    # Accuracies are written as the percentages they are, not with the *100's binary tail.
    written = [line.split(",")[2] for line in open(runs_path).read().splitlines()[1:]]
    assert all(re.fullmatch(r"\d+\.\d{1,10}", a) for a in written), f"untidy accuracies: {written}"
    # (two steps of training: whether the methods learn is test_torch_reference.py's question)
    print(f"--add: human+equal {runs['human+equal']} beside the kept STL {runs['stl']}")
    # Its output, kept as the setting's run log, names the OpenBLAS kernel in the line make_results
    # reads to pair each run with the STL on its own kernel.
    with open(setting + ".log", "w") as f:
        f.write(done.stdout)
    kernel = gemm_kernel(setting, "human+equal")
    assert re.search(r"^GEMM: ", done.stdout, re.M) and kernel and blas_kernel().startswith(kernel), (kernel, done.stdout)
    print(f"--add's log names the kernel make_results pairs by: {kernel}")
    # and when the command began, by which make_results orders a setting's directories
    started = start_times(os.path.dirname(setting)).get(os.path.basename(setting))
    assert started and abs((datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - started).total_seconds()) < 3600, (started, done.stdout)

    # Without --add a finished setting is left alone (the study is resumable).
    before = open(summary_path).read()
    done = run(out, "--methods", "stl,human+cosine", *common)
    assert done.returncode == 0 and open(summary_path).read() == before, done.stderr

    # --aux-weight: the sweep's directory, beside the demo's sweep_<h>_<model>_n<N>_w<W>.
    done = run(out, "--aux-weight", "0.5", "--methods", "stl,human+equal", *common)
    assert done.returncode == 0, done.stderr
    sweep = os.path.join(out, "sweep_half2_mlp_n100_w0.5_torch", "summary_half2_mlp.csv")
    assert list(study_csv.read_summary(sweep)) == ["stl", "human+equal"], sweep
    done = run(out, "--aux-weight", "nan", *common)
    assert done.returncode != 0 and "--aux-weight nan is not a finite weight" in done.stderr, done.stderr
print("torch_study --add keeps finished runs, rejects corrupt settings before training; --aux-weight writes the sweep")
