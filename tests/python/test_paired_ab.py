#!/usr/bin/env python3
"""scripts/paired_ab.py on generated study directories: the paired figures it prints are the ones
computed here by hand, and directories that cannot be paired (missing method, no shared seeds, a
baseline that differs between the arms, two runs files, a corrupt file) stop it with exit code 1
and a message naming the problem.  Standard library only."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "paired_ab.py")


def study_dir(root, name, rows, filename="runs_super5_mlp.csv"):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, filename), "w") as f:
        f.write("method,seed,accuracy\n")
        for method, seed, acc in rows:
            f.write(f"{method},{seed},{acc}\n")
    return d


def run(*args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def expect_failure(fragment, *args):
    code, out, err = run(*args)
    assert code == 1, f"exit {code}, expected 1 ({fragment}); stdout {out!r} stderr {err!r}"
    assert fragment in err, f"expected '{fragment}' in: {err!r}"
    assert out == "", f"nothing on stdout when the arms cannot be compared: {out!r}"


BASE = [("stl", s, a) for s, a in ((1, 80.0), (2, 81.0), (3, 82.0), (4, 83.0))] + \
       [("stl@dev", s, a) for s, a in ((1, 79.0), (2, 80.0), (3, 81.0), (4, 82.0))]

with tempfile.TemporaryDirectory() as root:
    # Arm A: dtg 80, 80, 82, 84 (gain over stl@dev +1, 0, +1, +2).  Arm B: 81, 80.5, 81.5, 85 (B - A:
    # +1, +0.5, -0.5, +1 -> mean 0.5, s.d. sqrt(((0.5)^2+0+1+(0.5)^2)/3) = sqrt(0.5), SE 0.3536).
    a = study_dir(root, "a", BASE + [("dtg", 1, 80.0), ("dtg", 2, 80.0), ("dtg", 3, 82.0), ("dtg", 4, 84.0)])
    b = study_dir(root, "b", BASE + [("dtg", 1, 81.0), ("dtg", 2, 80.5), ("dtg", 3, 81.5), ("dtg", 4, 85.0)])
    code, out, err = run(a, b, "--method", "dtg", "--labels", "constant,follow")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "dtg: 4 paired seeds (1..4), baseline stl@dev", lines[0]
    assert "constant" in lines[1] and "gain over stl@dev +1.00 +- 0.41 (SE)" in lines[1] and "worst +0.00" in lines[1], lines[1]
    assert "follow" in lines[2] and "gain over stl@dev +1.50 +- 0.61 (SE)" in lines[2] and "worst +0.50" in lines[2], lines[2]
    assert "follow - constant: +0.50 +- 0.35 (SE, paired by seed); follow higher on 3, equal on 0, lower on 1 of 4" in lines[3], lines[3]
    # --baseline stl: gains over STL instead (A: 0, -1, 0, +1).
    code, out, err = run(a, b, "--method", "dtg", "--baseline", "stl")
    assert code == 0 and "gain over stl +0.00 +- 0.41 (SE)" in out.splitlines()[1], out + err
    # Only the seeds both arms ran are paired (B lacks seed 4 here).
    b3 = study_dir(root, "b3", BASE + [("dtg", 1, 81.0), ("dtg", 2, 80.5), ("dtg", 3, 81.5)])
    code, out, err = run(a, b3, "--method", "dtg")
    assert code == 0 and out.startswith("dtg: 3 paired seeds (1..3)"), out + err

    # --- arms that cannot be paired ---
    expect_failure("no runs of method rl_aux", a, b, "--method", "rl_aux")
    expect_failure("share 1 seed(s)", a, study_dir(root, "one", BASE + [("dtg", 2, 80.0)]), "--method", "dtg")
    moved = [(m, s, acc + 0.01 if (m, s) == ("stl@dev", 3) else acc) for m, s, acc in BASE]
    expect_failure("seed 3: stl@dev gave 81.0", a, study_dir(root, "moved", moved + [("dtg", 1, 80.0), ("dtg", 2, 80.0)]),
                   "--method", "dtg")
    two = study_dir(root, "two", BASE + [("dtg", 1, 80.0)])
    study_dir(root, "two", BASE, filename="runs_half2_mlp.csv")
    expect_failure("expected one runs_", a, two, "--method", "dtg")
    expect_failure("not a directory", a, os.path.join(root, "absent"), "--method", "dtg")
    bad = study_dir(root, "bad", BASE + [("dtg", 1, "80.0x")])
    expect_failure("accuracy", a, bad, "--method", "dtg")
    expect_failure("appears twice", a, study_dir(root, "dup", BASE + [("dtg", 1, 80.0), ("dtg", 1, 81.0)]), "--method", "dtg")
    code, out, err = run(a, b, "--method", "dtg", "--labels", "only-one")
    assert code == 2 and "--labels" in err, (code, err)

print("paired_ab: all checks passed")
