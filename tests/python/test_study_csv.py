#!/usr/bin/env python3
"""The study's CSV readers (benchmarks/study_csv.py) and scripts/make_results.py on good and bad
study directories.  Every bad file must stop the reader with a StudyCsvError naming the file and
what is wrong; make_results must exit with that message and leave the previous report untouched.
Standard library only (make_results runs with --no-plots, so matplotlib is not needed)."""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import study_csv  # noqa: E402

SUMMARY_HEADER = "method,runs,diverged,accuracy_mean,accuracy_std,delta_vs_stl,delta_se,seconds_per_epoch,ms_per_step,delta_vs_stl_dev,delta_dev_se"
SUMMARY = SUMMARY_HEADER + """
stl,3,0,90.00,0.5,0,0,0.07,9.0,,
human+equal,3,0,90.50,0.4,0.5,0.1,0.08,10.0,,
"""
RUNS = """method,seed,accuracy
stl,1,89.5
stl,2,90.0
stl,3,90.5
human+equal,1,90.1
human+equal,2,90.4
human+equal,3,91.0
"""
CURVE_HEADER = "run,epoch,step,lr,epoch_seconds,total_seconds,train_loss0,train_loss1,aux_weight1,val_loss0,val_loss1,val_accuracy0,val_accuracy1"
CURVE = CURVE_HEADER + """
stl/seed1,1,8,0.05,0.06,0.06,0.63,nan,0,0.50,2.29,0.8665,0.185
stl/seed1,2,16,0.049,0.05,0.15,0.37,nan,0,0.30,2.30,0.8675,0.1875
"""


def write(directory, name, text, binary=False):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "wb" if binary else "w") as f:
        f.write(text)
    return path


def write_one_seed(directory, seed, stl, method, accuracy):
    """A directory of one seed's runs: STL and one method, summary and runs CSV."""
    write(directory, "summary_half2_mlp.csv", SUMMARY_HEADER + f"\nstl,1,0,{stl},0,0,0,0.07,9.0,,\n"
          f"{method},1,0,{accuracy},0,{accuracy - stl:.1f},0,0.08,10.0,,\n")
    write(directory, "runs_half2_mlp.csv", f"method,seed,accuracy\nstl,{seed},{stl}\n{method},{seed},{accuracy}\n")


def expect_error(reader, path, fragment):
    try:
        reader(path)
    except study_csv.StudyCsvError as e:
        message = str(e)
        assert path in message, f"the message does not name the file: {message}"
        assert fragment in message, f"expected '{fragment}' in: {message}"
        return message
    raise AssertionError(f"{path}: no error, expected '{fragment}'")


with tempfile.TemporaryDirectory() as d:
    # --- good files ---
    summary = study_csv.read_summary(write(d, "summary.csv", SUMMARY))
    assert list(summary) == ["stl", "human+equal"] and summary["human+equal"]["delta_vs_stl"] == "0.5", summary
    runs = study_csv.read_runs(write(d, "runs.csv", RUNS))
    assert runs["stl"] == {1: 89.5, 2: 90.0, 3: 90.5} and runs["human+equal"][3] == 91.0, runs
    study_csv.check_runs_match_summary("summary.csv", summary, "runs.csv", runs)
    method, curve = study_csv.read_curve(write(d, "curve.csv", CURVE))
    assert method == "stl" and [round(c, 2) for c in curve] == [86.65, 86.75], (method, curve)
    # every diverged: accuracy columns empty, still a valid summary
    all_diverged = SUMMARY_HEADER + "\nstl,3,0,90,0.5,0,0,0.07,9.0,,\nmaxl+equal,2,2,,,,,,,,\n"
    assert study_csv.read_summary(write(d, "diverged.csv", all_diverged))["maxl+equal"]["runs"] == "2"

    # --- bad files: each names the file and the fault ---
    bad_runs = [
        ("empty", "", "empty file"),
        ("foreign header", "name,score\na,1\n", "lacks column(s) method, seed, accuracy"),
        ("truncated line", RUNS[:RUNS.index("human+equal,2") + len("human+equal,")], "ends before column accuracy"),
        ("extra field", RUNS + "stl,4,90.0,oops\n", "4 fields, the header has 3"),
        ("not a number", RUNS.replace("90.4", "90.4x"), "column accuracy is '90.4x', not a number"),
        ("nan accuracy", RUNS.replace("90.4", "nan"), "column accuracy is nan, not finite"),
        ("out of range", RUNS.replace("90.4", "904"), "904, above 100 (the range is [0, 100])"),
        ("fraction seed", RUNS.replace("stl,2,", "stl,2.5,"), "column seed is '2.5', not an integer"),
        ("duplicate seed", RUNS + "stl,2,90.0\n", "method stl, seed 2 appears twice"),
        ("empty method", RUNS + ",4,90.0\n", "column method is empty"),
    ]
    for name, text, fragment in bad_runs:
        message = expect_error(study_csv.read_runs, write(d, name.replace(" ", "_") + ".csv", text), fragment)
        print(f"runs CSV, {name}: {message}")
    line = expect_error(study_csv.read_runs, write(d, "line.csv", RUNS.replace("90.4", "x")), "not a number")
    assert ":6:" in line, f"the message does not give line 6: {line}"  # header is line 1
    expect_error(study_csv.read_runs, write(d, "latin1.csv", RUNS.encode() + b"stl,9,8\xe9\n", binary=True), "not UTF-8")
    expect_error(study_csv.read_runs, os.path.join(d, "absent.csv"), "cannot open")

    bad_summaries = [
        ("duplicate method", SUMMARY + "stl,3,0,90.00,0.5,0,0,0.07,9.0,,\n", "method stl appears twice"),
        ("more diverged than runs", SUMMARY.replace("human+equal,3,0,", "human+equal,3,4,"), "4 diverged runs of 3"),
        ("negative runs", SUMMARY.replace("human+equal,3,", "human+equal,-3,"), "column runs is -3, below 0"),
        ("inf timing", SUMMARY.replace("0.08,10.0", "inf,10.0"), "column seconds_per_epoch is inf, not finite"),
        ("negative se", SUMMARY.replace("0.5,0.1,", "0.5,-0.1,"), "column delta_se is -0.1, below 0"),
        ("runs CSV given", RUNS, "lacks column(s) runs, diverged"),
    ]
    for name, text, fragment in bad_summaries:
        message = expect_error(study_csv.read_summary, write(d, "s_" + name.replace(" ", "_") + ".csv", text), fragment)
        print(f"summary CSV, {name}: {message}")

    bad_curves = [
        ("header only", CURVE_HEADER + "\n", "no epochs"),
        ("epoch gap", CURVE.replace("stl/seed1,2,", "stl/seed1,3,"), "epoch 3 where 2 was due"),
        ("two methods", CURVE.replace("stl/seed1,2,", "maxl+equal/seed1,2,"), "in a file of method stl"),
        ("accuracy in percent", CURVE.replace("0.8675", "86.75"), "column val_accuracy0 is 86.75, above 1"),
    ]
    for name, text, fragment in bad_curves:
        message = expect_error(study_csv.read_curve, write(d, "c_" + name.replace(" ", "_") + ".csv", text), fragment)
        print(f"curve CSV, {name}: {message}")

    # runs and summary disagree
    for runs_text, fragment in ((RUNS + "maxl+equal,1,90\n", "maxl+equal has runs but no row in"),
                                (RUNS.replace("human+equal,3,91.0\n", ""), "has 2 runs, S says 3 finished"),
                                ("method,seed,accuracy\nstl,1,90\nstl,2,90\nstl,3,90\n", "has 3 runs, none in R")):
        try:
            study_csv.check_runs_match_summary("S", summary, "R", study_csv.read_runs(write(d, "mismatch.csv", runs_text)))
        except study_csv.StudyCsvError as e:
            assert fragment in str(e), f"expected '{fragment}' in: {e}"
            print(f"runs vs summary: {e}")
        else:
            raise AssertionError(f"no error, expected '{fragment}'")

    # --- make_results --no-plots on a small study: tables from the files, then a corrupt file ---
    study, docs = os.path.join(d, "study"), os.path.join(d, "docs")
    write(study, "README.txt", "# a study made by test_study_csv.py\n")
    setting = os.path.join(study, "half2_mlp_n300")
    write(setting, "summary_half2_mlp.csv", SUMMARY)
    write(setting, "runs_half2_mlp.csv", RUNS)
    write(setting, "half2_mlp_stl_seed1.csv", CURVE)
    torch = os.path.join(study, "half2_mlp_n300_torch")
    write(torch, "summary_half2_mlp.csv", SUMMARY.replace("90.50,0.4,0.5,0.1", "90.30,0.4,0.3,0.2"))
    write(torch, "runs_half2_mlp.csv", RUNS.replace("human+equal,1,90.1", "human+equal,1,89.5"))
    sweep = os.path.join(study, "sweep_half2_mlp_n300_w2")
    write(sweep, "summary_half2_mlp.csv", SUMMARY.replace("0.5,0.1,", "0.7,0.2,"))
    write(os.path.join(study, "sweep_half2_mlp_n300_w2_torch"), "summary_half2_mlp.csv", SUMMARY.replace("0.5,0.1,", "-0.2,0.3,"))
    # A variant's runs (torch_study --dtg-follow-schedule) must stay out of the setting's rows: if
    # they were pooled, their different seed-3 STL would stop make_results as a clash.
    variant = os.path.join(study, "half2_mlp_n300_dtgfollow_torch")
    write(variant, "summary_half2_mlp.csv", SUMMARY)
    write(variant, "runs_half2_mlp.csv", RUNS.replace("stl,3,90.5", "stl,3,77.0"))
    # Extra seeds of the setting with a method its main run lacks (as super5_cnn_n1000_seeds4-6):
    # STL pools to 5 seeds; dtg gets a row of its own, paired with STL's seeds 4-5, timed from there.
    extra = os.path.join(study, "half2_mlp_n300_seeds4-5")
    write(extra, "summary_half2_mlp.csv", SUMMARY_HEADER + "\nstl,2,0,90.1,0.14,0,0,0.07,9.0,,\n"
          "dtg,2,0,90.8,0.28,0.7,0.3,0.55,60.0,,\n")
    write(extra, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,4,90.0\nstl,5,90.2\ndtg,4,91.0\ndtg,5,90.6\n")
    command = [sys.executable, os.path.join(ROOT, "scripts", "make_results.py"), study, "--docs", docs, "--no-plots"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "half2_mlp_n300_dtgfollow_torch is not named as a study setting; left out" in done.stderr, done.stderr
    shutil.rmtree(variant)
    report = open(os.path.join(docs, "RESULTS.md")).read()
    for expected in ("| human+equal (seeds 3) | 90.50 ± 0.40 | +0.50 ± 0.10 |",  # the summary's row
                     "| method | library | λ = 1 | λ = 2 |",  # the sweep: λ = 1 from the main setting
                     "| human+equal | auxl | +0.50 ± 0.10 | +0.70 ± 0.20 |",
                     "| human+equal | PyTorch | +0.30 ± 0.20 | -0.20 ± 0.30 |",
                     # beside PyTorch, from the runs CSVs: gains paired by seed, their difference unpaired
                     "| +0.50 ± 0.06 | +0.30 ± 0.15 | +0.20 ± 0.16 |",
                     "| stl (seeds 5) | 90.04 ± 0.36 | — | 0.07 |",  # seeds 1-3 and 4-5 pooled
                     "| dtg (seeds 2) | 90.80 ± 0.28 | +0.70 ± 0.30 | 0.55 |",  # only in the extra directory
                     # every seed's own difference at the model's largest size (here 300), per library
                     "| half2 mlp n=300 | human+equal vs stl | 1: +0.60, 2: +0.40, 3: +0.50 | 1: +0.00, 2: +0.40, 3: +0.50 |",
                     "| half2 mlp n=300 | dtg vs stl | 4: +1.00, 5: +0.40 | — |",
                     "a study made by test_study_csv.py"):
        assert expected in report, f"'{expected}' not in the report:\n{report}"
    assert "![" not in report, "--no-plots must not link images"

    # An unfinished command's directory whose name sorts first (as super5_cnn_n60000_dtgseeds1-1
    # before _metaseeds1-1) reran a seed of a method a finished extra-seed directory timed: the
    # row keeps that directory's timing.
    rerun = os.path.join(study, "half2_mlp_n300_dtgseeds4-4")
    write(rerun, "partial_runs_half2_mlp.csv", "method,seed,accuracy\nstl,4,90.0\ndtg,4,91.0\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rerun_report = open(os.path.join(docs, "RESULTS.md")).read()
    assert "| dtg (seeds 2) | 90.80 ± 0.28 | +0.70 ± 0.30 | 0.55 |" in rerun_report, rerun_report
    shutil.rmtree(rerun)

    # One seed on a side has no spread: its row is shown without a standard error and kept out of
    # the count of differences beyond two of them (a zero "standard error" would flag it).
    single = os.path.join(study, "half2_mlp_n300_dtgseeds4-4_torch")
    write(single, "summary_half2_mlp.csv", SUMMARY_HEADER + "\nstl,1,0,90.4,0,0,0,0.07,9.0,,\ndtg,1,0,91.5,0,1.1,0,0.55,60.0,,\n"
          "human+equal,1,0,90.9,0,0.5,0,0.08,10.0,,\n")
    write(single, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,4,90.4\ndtg,4,91.5\nhuman+equal,4,90.9\n")
    # a sweep point with one seed so far (as sweep_half2_cnn_n60000_w0.5 had)
    sweep_one = os.path.join(study, "sweep_half2_mlp_n300_w4")
    write_one_seed(sweep_one, 1, 90.0, "human+equal", 90.6)
    # likewise a setting of auxl's own tables that has one seed so far (as half2_cnn_n60000 had)
    one_seed = os.path.join(study, "half2_mlp_n1000")
    write_one_seed(one_seed, 1, 90.6, "human+equal", 91.0)
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with_single = open(os.path.join(docs, "RESULTS.md")).read()
    for expected in ("| half2 mlp n=300 | dtg | 90.80 ± 0.28 (2) | 91.50 (1) | -0.70 (one seed) | +0.70 ± 0.30 | +1.10 | -0.40 (one seed) |",
                     "1 row with a single seed on one side is shown without a standard error"):
        assert expected in with_single, f"'{expected}' not in the report:\n{with_single}"
    assert "| human+equal (seeds 3/1) | 90.50 ± 0.40 | +0.50 ± 0.10 | 91.00 | +0.40 |" in with_single, with_single
    # The sweep's λ = 1 pools PyTorch's extra seeds as auxl's row does: seeds 1-3 and 4 paired by
    # seed give +0.35 ± 0.12 (the first directory's summary alone says +0.30 ± 0.20).
    for expected in ("| method | library | λ = 1 | λ = 2 | λ = 4 |",
                     "| human+equal | auxl | +0.50 ± 0.10 | +0.70 ± 0.20 | +0.60 |",
                     "| human+equal | PyTorch | +0.35 ± 0.12 | -0.20 ± 0.30 | — |"):
        assert expected in with_single, f"'{expected}' not in the report:\n{with_single}"
    assert "± 0.00" not in with_single, "a single run was given a zero spread"
    # A second seed of that point in a directory of its own (as sweep_half2_cnn_n60000_w2_seeds2-2)
    # pools with the first: gains +0.6 and +0.8 paired by seed give +0.70 ± 0.10.
    sweep_more = os.path.join(study, "sweep_half2_mlp_n300_w4_seeds2-2")
    write_one_seed(sweep_more, 2, 90.2, "human+equal", 91.0)
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pooled_sweep = open(os.path.join(docs, "RESULTS.md")).read()
    assert "| human+equal | auxl | +0.50 ± 0.10 | +0.70 ± 0.20 | +0.70 ± 0.10 |" in pooled_sweep, pooled_sweep
    assert "sweep_half2_mlp_n300_w4_seeds2-2 is not named" not in done.stderr, done.stderr
    # the two directories of a point must agree about a seed they both ran: to the printed digits
    # (older runs wrote accuracy * 100 unrounded), not in the last bit of a float
    write(sweep_more, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,1,90.00000000000001\nhuman+equal,1,90.6\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    write(sweep_more, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,1,90.3\nhuman+equal,1,91.0\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and "stl seed 1 is 90.3 here, 90.0 in another directory" in done.stderr, done.stderr
    shutil.rmtree(sweep_more)
    print("make_results pools a sweep point's extra-seed directories, and stops on a seed they disagree about")
    shutil.rmtree(single)
    shutil.rmtree(sweep_one)
    shutil.rmtree(one_seed)
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0 and open(os.path.join(docs, "RESULTS.md")).read() == report, done.stderr
    print("make_results on a single seed (PyTorch row, auxl setting): shown without a standard error, not counted")

    write(setting, "runs_half2_mlp.csv", RUNS.replace("90.4", "90.4.1"))
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0, "make_results accepted a corrupt runs CSV"
    assert "make_results:" in done.stderr and "runs_half2_mlp.csv:6" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert open(os.path.join(docs, "RESULTS.md")).read() == report, "a failed run changed the report"
    print(f"make_results on a corrupt runs CSV: {done.stderr.strip()}")

    # two directories of one setting that disagree about a seed
    write(setting, "runs_half2_mlp.csv", RUNS)
    write(os.path.join(study, "half2_mlp_n300_seeds3-4"), "runs_half2_mlp.csv", "method,seed,accuracy\nstl,3,77.0\nstl,4,90\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and "stl seed 3 is 77.0 here, 90.5 in another directory" in done.stderr, done.stderr
    print(f"make_results on a seed claimed twice: {done.stderr.strip()}")

    # A baseline rerun on another GEMM kernel differs from the first run in the last digits (the
    # run logs beside the directories name the kernels): each method is paired with the STL of its
    # own directory, and STL's row keeps the first run. On the same kernel, or with no log to say,
    # a difference is still a clash.
    shutil.rmtree(os.path.join(study, "half2_mlp_n300_seeds3-4"))
    write(study, "half2_mlp_n300.log", "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel SkylakeX, 1 threads\n")
    rerun = os.path.join(study, "half2_mlp_n300_rlseeds1-2")
    write(rerun, "summary_half2_mlp.csv", SUMMARY_HEADER + "\nstl,2,0,89.8,0.42,0,0,0.07,9.0,,\n"
          "rl_aux+equal,2,0,90.6,0.28,0.8,0.1,0.5,50.0,,\n")
    write(rerun, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,1,89.5\nstl,2,90.1\nrl_aux+equal,1,90.4\nrl_aux+equal,2,90.8\n")
    for log in (None, "\x00\xff truncated log, no GEMM line\n", "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel SkylakeX, 1 threads\n"):
        if log:
            write(study, "half2_mlp_n300_rlseeds1-2.log", log)
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode != 0 and "stl seed 2 is 90.1 here, 90.0 in another directory" in done.stderr, done.stderr
    write(study, "half2_mlp_n300_rlseeds1-2.log", "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel Cooperlake, 1 threads\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = open(os.path.join(docs, "RESULTS.md")).read()
    # paired with its own STL (89.5, 90.1): +0.9, +0.7; with the first STL (89.5, 90.0) it would be +0.85 ± 0.05
    for expected in ("| rl_aux+equal (seeds 2) | 90.60 ± 0.28 | +0.80 ± 0.10 |", "| stl (seeds 5) | 90.04 ± 0.36 |"):
        assert expected in report, f"'{expected}' not in the report:\n{report}"
    # stl@dev from yet another directory on the rerun's kernel pairs with the rerun's methods; two
    # directories on one kernel that disagree about a seed are a clash again.
    dev = os.path.join(study, "half2_mlp_n300_devseeds1-2")
    write(dev, "summary_half2_mlp.csv", SUMMARY_HEADER + "\nstl,2,0,89.8,0.42,0,0,0.07,9.0,,\n"
          "stl@dev,2,0,89.45,0.64,-0.35,0.25,0.07,9.0,,\n")
    write(dev, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,1,89.5\nstl,2,90.1\nstl@dev,1,89.0\nstl@dev,2,89.9\n")
    write(study, "half2_mlp_n300_devseeds1-2.log", "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel Cooperlake, 1 threads\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = open(os.path.join(docs, "RESULTS.md")).read()
    # rl_aux+equal − stl@dev on Cooperlake: +1.4, +0.9
    assert "| rl_aux+equal vs stl@dev | +1.15 ± 0.25 (2) |" in report, report
    write(dev, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,1,89.5\nstl,2,90.2\nstl@dev,1,89.0\nstl@dev,2,89.9\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and "stl seed 2 is 90.1 here, 90.2 in another directory" in done.stderr, done.stderr
    # Runs made before their logs named the kernel: <dir>.kernels names it per method, from the
    # sessions' notes. A baseline it does not name is still a clash; a malformed line is rejected.
    write(dev, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,1,89.5\nstl,2,90.1\nstl@dev,1,89.0\nstl@dev,2,89.9\n")
    os.remove(os.path.join(study, "half2_mlp_n300.log"))
    write(study, "half2_mlp_n300.kernels", "# recorded afterwards\nhuman+equal SkylakeX\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and "stl seed 2 is 90.1 here, 90.0 in another directory" in done.stderr, done.stderr
    write(study, "half2_mlp_n300.kernels", "# recorded afterwards\nhuman+equal SkylakeX\nstl SkylakeX  # its session's note\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = open(os.path.join(docs, "RESULTS.md")).read()
    for expected in ("| rl_aux+equal (seeds 2) | 90.60 ± 0.28 | +0.80 ± 0.10 |", "| rl_aux+equal vs stl@dev | +1.15 ± 0.25 (2) |"):
        assert expected in report, f"'{expected}' not in the report:\n{report}"
    write(study, "half2_mlp_n300.kernels", "stl\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and "half2_mlp_n300.kernels line 1: expected 'method kernel'" in done.stderr, done.stderr
    os.remove(os.path.join(study, "half2_mlp_n300.kernels"))
    print("make_results on baseline reruns on another GEMM kernel: each run paired with the STL on its kernel")

    # A command that never finished (its machine was lost): the partial runs CSV it kept lists
    # the runs it did finish. They are pooled like any other; a method only it ran gets a row (no
    # timing), paired with its STL; the report names the directory; the curve of the run it was
    # in when it stopped is left out; a runs CSV beside it that disagrees is a clash.
    write(study, "half2_mlp_n300.log", "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel SkylakeX, 1 threads\n")
    unfinished = os.path.join(study, "half2_mlp_n300_rlwseeds6-6")
    write(study, "half2_mlp_n300_rlwseeds6-6.log", "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel Cooperlake, 1 threads\n")
    write(unfinished, "partial_runs_half2_mlp.csv", "method,seed,accuracy\nstl,6,90.0\nrl_aux_w+equal,6,88.5\n")
    write(unfinished, "half2_mlp_stl_seed6.csv", CURVE.replace("stl/seed1", "stl/seed6"))
    write(unfinished, "half2_mlp_rl_aux_w+equal_seed6.csv", CURVE.replace("stl/seed1", "rl_aux_w+equal/seed6"))
    write(unfinished, "half2_mlp_dtg_seed6.csv", CURVE_HEADER + "\ndtg/seed6,1,8,0.05,0.06,0.06,0.63,nan,0,0.50,2.29,0.8,0.1\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = open(os.path.join(docs, "RESULTS.md")).read()
    for expected in ("| rl_aux_w+equal (seeds 1) | 88.50 | -1.50 | — |", "| stl (seeds 6) |",
                     "from the `partial_runs_*.csv`\neach of them left (no timing): `half2_mlp_n300_rlwseeds6-6`."):
        assert expected in report, f"'{expected}' not in the report:\n{report}"
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import make_results  # noqa: E402
    assert sorted(make_results.read_curves(unfinished)) == ["rl_aux_w+equal", "stl"]
    write(unfinished, "runs_half2_mlp.csv", "method,seed,accuracy\nstl,6,90.1\n")
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and "partial_runs_half2_mlp.csv: stl seed 6 is 90.0 here, 90.1 in the runs CSV beside it" \
        in done.stderr, done.stderr
    shutil.rmtree(unfinished)
    os.remove(os.path.join(study, "half2_mlp_n300_rlwseeds6-6.log"))
    os.remove(os.path.join(study, "half2_mlp_n300.log"))
    print("make_results on an unfinished command: its finished runs pooled from partial_runs_*.csv, named in the report")

# --- a baseline seed two directories ran on two kernels: the pooled rows keep the first-started run ---
# Two extra-seed directories whose names sort the other way round from the order they started in.
# The start comes from the earliest "started ...Z" line of <dir>.log, else from <study>/started.txt;
# a directory with no record sorts after those with one, so adding a directory never moves a row.
SKYLAKE = "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel SkylakeX, 1 threads\n"
COOPERLAKE = "GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel Cooperlake, 1 threads\n"
with tempfile.TemporaryDirectory() as d:
    study, docs = os.path.join(d, "study"), os.path.join(d, "docs")
    write(os.path.join(study, "half2_mlp_n300"), "summary_half2_mlp.csv", SUMMARY)
    write(os.path.join(study, "half2_mlp_n300"), "runs_half2_mlp.csv", RUNS)
    write(study, "half2_mlp_n300.log", "started 2026-11-30T08:00Z\n" + SKYLAKE)
    early, late = "half2_mlp_n300_zzseeds4-4", "half2_mlp_n300_aaseeds4-4"
    write(os.path.join(study, early), "runs_half2_mlp.csv", "method,seed,accuracy\nstl,4,90.4\n")
    write_one_seed(os.path.join(study, late), 4, 90.8, "rl_aux+equal", 90.9)
    command = [sys.executable, os.path.join(ROOT, "scripts", "make_results.py"), study, "--docs", docs, "--no-plots"]

    def stl_row():
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        report = open(os.path.join(docs, "RESULTS.md")).read()
        rows = [line for line in report.splitlines() if line.startswith("| stl (seeds 4) |")]
        assert rows, report
        return rows[0].split("|")[2].split()[0]  # the pooled mean: 90.10 with seed 4 at 90.4, 90.20 at 90.8

    # by the logs' stamps (seconds or minutes; the earliest of a log's commands counts)
    write(study, early + ".log", "started 2026-12-01T10:00Z\n" + SKYLAKE)
    write(study, late + ".log", "started 2026-12-03T09:00:05Z\n" + COOPERLAKE + "started 2026-12-02T09:00:05Z\n" + COOPERLAKE)
    assert stl_row() == "90.10", "the later directory's rerun took the pooled row"
    write(study, late + ".log", "started 2026-12-01T09:59:59Z\n" + COOPERLAKE)
    assert stl_row() == "90.20"
    # from started.txt for logs without a stamp; an unrecorded directory comes last
    write(study, early + ".log", SKYLAKE)
    write(study, late + ".log", COOPERLAKE)
    write(study, "started.txt", f"# when each began\nhalf2_mlp_n300 2026-11-30T08:00Z\n{late} 2026-12-02T09:00:00Z\n"
          f"{early} 2026-12-01T10:00Z  # its session's note\n")
    assert stl_row() == "90.10"
    write(study, "started.txt", f"{late} 2026-12-02T09:00:00Z\n")
    assert stl_row() == "90.20", "a recorded directory must come before unrecorded ones"
    done = subprocess.run(command, capture_output=True, text=True)
    assert f"no start time for {early} (no 'started' line in its log, not in started.txt)" in done.stderr, done.stderr
    write(study, "started.txt", f"{early} 2026-12-01T10:00Z\n")
    assert stl_row() == "90.10"
    report = open(os.path.join(docs, "RESULTS.md")).read()
    # rl_aux+equal still pairs with the STL run on its own kernel: 90.9 - 90.8
    assert "| rl_aux+equal (seeds 1) | 90.90 | +0.10 |" in report, report
    for bad, fragment in ((f"{early} 2026-12-01Z\n", "line 1: '2026-12-01' is not a UTC time"),
                          (f"{early}\n", "line 1: expected 'directory YYYY-MM-DDTHH:MM[:SS]Z'"),
                          (f"{early} 2026-12-01T10:00Z\n{early} 2026-12-02T10:00Z\n", f"line 2: {early} is listed twice")):
        write(study, "started.txt", bad)
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode != 0 and "started.txt" in done.stderr and fragment in done.stderr, done.stderr
    os.remove(os.path.join(study, "started.txt"))
    write(study, late + ".log", "started 2026-13-01T10:00Z\n" + COOPERLAKE)
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode != 0 and late + ".log: '2026-13-01T10:00' is not a UTC time" in done.stderr, done.stderr
print("make_results pools a baseline seed run twice from the directory that started first")

# --- make_results' clean-up of plots it no longer writes (no matplotlib needed) ---
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import make_results  # noqa: E402

# --- a run log that holds two commands on two machines: each run has the kernel above its result ---
with tempfile.TemporaryDirectory() as d:
    setting = os.path.join(d, "half2_cnn_n60000_rlwseeds1-1")
    os.makedirs(setting)
    log = ("GEMM: OpenBLAS 0.3.21 DYNAMIC_ARCH, kernel Cooperlake, 1 threads\n"
           "  seed 1    stl                  test accuracy 95.65%  (39.379 s/epoch)\n"
           "time limit reached: half2_cnn_dtg_seed1 at epoch 8, step 3819 saved\n"
           "GEMM: PyTorch 1.13.0a0 through OpenBLAS, kernel SkylakeX, 1 threads\n"
           "  seed 1    stl@dev              test accuracy 95.64%  (48.306 s/epoch)\n"
           "  half2 cnn n=60000 seed 1 dtg                  test accuracy 95.70%  (1.0 s/epoch)\n")
    write(d, "half2_cnn_n60000_rlwseeds1-1.log", log)
    kernels = {m: make_results.gemm_kernel(setting, m) for m in ("stl", "stl@dev", "dtg", "rl_aux+equal")}
    # stl is not matched by stl@dev's line; a method the log does not report gets the first kernel
    assert kernels == {"stl": "Cooperlake", "stl@dev": "SkylakeX", "dtg": "SkylakeX", "rl_aux+equal": "Cooperlake"}, kernels
    write(d, "half2_cnn_n60000_rlwseeds1-1.log", log + "  seed 1    stl                  test accuracy 95.60%\n")
    expect_error(lambda _: make_results.gemm_kernel(setting, "stl"), setting, "stl's runs name 2 GEMM kernels (Cooperlake, SkylakeX)")
print("make_results reads each run's kernel from the GEMM line above its result in a log of several commands")
with tempfile.TemporaryDirectory() as img:
    names = ["accuracy_vs_epoch_half2_cnn_n1000.png",  # stale: the middle size moved to 6,000
             "accuracy_vs_epoch_half2_cnn_n6000.png", "accuracy_vs_size_half2_cnn.png",
             "weight_sweep_half2_mlp_n1000.png", "seconds_per_epoch.png",
             "weight_sweep_super5_cnn_n300.png",  # stale
             "architecture.png", "accuracy_vs_epoch_notes.txt"]  # the user's own files: kept
    for name in names:
        write(img, name, "x")
    written = {"accuracy_vs_epoch_half2_cnn_n6000.png", "accuracy_vs_size_half2_cnn.png",
               "weight_sweep_half2_mlp_n1000.png", "seconds_per_epoch.png"}
    removed = make_results.remove_stale_plots(img, written)
    assert removed == ["accuracy_vs_epoch_half2_cnn_n1000.png", "weight_sweep_super5_cnn_n300.png"], removed
    left = sorted(os.listdir(img))
    assert left == sorted(written | {"architecture.png", "accuracy_vs_epoch_notes.txt"}), left
    assert make_results.remove_stale_plots(img, written) == [], "a second clean-up removed more"
print("make_results' clean-up: removes only the generated plots this run did not write")

# --- the t distribution behind the report's "expected by chance" (closed forms and tables) ---
import math  # noqa: E402
for df, exact in ((1, 1 - 2 * math.atan(2) / math.pi),  # Cauchy
                  (2, 1 - 2 / math.sqrt(6)),             # P(|T_2| > t) = 1 - t / sqrt(t² + 2)
                  (1e7, math.erfc(2 / math.sqrt(2)))):   # the normal limit, 0.0455
    got = make_results.t_two_sided_tail(2.0, df)
    assert abs(got - exact) < 1e-6, f"P(|T_{df}| > 2) = {got}, expected {exact}"
for df, table in ((2, 4.3027), (4, 2.7764), (10, 2.2281)):  # two-sided 5 % critical values
    got = make_results.t_critical(df)
    assert abs(got - table) < 1e-4, f"t_crit({df}) = {got}, expected {table}"
assert make_results.welch_df(1.0, 3, 1.0, 3) == 4.0  # equal variances, n = 3 each: 2 + 2
assert abs(make_results.welch_df(1.0, 3, 0.0, 5) - 2.0) < 1e-12  # all the variance on one side
assert make_results.welch_df(0.0, 3, 0.0, 3) is None
print("make_results' t tail, critical values and Welch degrees of freedom match closed forms and tables")
print("study CSV readers and make_results: every bad input rejected with its file named")
