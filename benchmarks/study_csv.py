"""The learning-quality study's CSVs, read with every field checked.

The demo (examples/fashion_hierarchy) and benchmarks/torch_study.py write the same three kinds of
file into each setting's directory; scripts/make_results.py and `torch_study.py --add` read them
back.  A truncated, hand-edited or foreign file must stop those readers with a message naming the
file, the line and the field, never turn into a wrong table or a traceback.  Standard library only,
so the checks run (and are tested) without NumPy, PyTorch or matplotlib.

    summary_<hierarchy>_<model>.csv  one row per method: runs, diverged, accuracy mean/std (%),
                                     paired Δ vs STL, timings
    runs_<hierarchy>_<model>.csv     one row per (method, seed): final test accuracy (%)
    <hierarchy>_<model>_<method>_seed<S>.csv  (demo only) one row per epoch"""
import csv
import math

SUMMARY_COLUMNS = ("method", "runs", "diverged", "accuracy_mean", "accuracy_std", "delta_vs_stl", "delta_se",
                   "seconds_per_epoch", "ms_per_step")
RUNS_COLUMNS = ("method", "seed", "accuracy")
CURVE_COLUMNS = ("run", "epoch", "val_accuracy0")


class StudyCsvError(ValueError):
    """A study CSV that cannot be trusted; the message names the file, the line and what is wrong."""


def _rows(path, required):
    """(line number, row) pairs of a CSV whose header has every required column."""
    try:
        f = open(path, newline="")
    except OSError as e:
        raise StudyCsvError(f"{path}: cannot open: {e.strerror}") from e
    with f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames
            if not header:
                raise StudyCsvError(f"{path}: empty file (no header line)")
            missing = [c for c in required if c not in header]
            if missing:
                raise StudyCsvError(f"{path}: header lacks column(s) {', '.join(missing)} "
                                    f"(has {', '.join(header)}); not a study CSV of this kind")
            rows = []
            for row in reader:
                line = reader.line_num
                if None in row:  # more fields than the header names
                    raise StudyCsvError(f"{path}:{line}: {len(header) + len(row[None])} fields, the header has {len(header)}")
                short = [c for c in required if row[c] is None]
                if short:  # fewer fields: a truncated line
                    raise StudyCsvError(f"{path}:{line}: line ends before column {short[0]} (truncated?)")
                rows.append((line, row))
        except csv.Error as e:
            raise StudyCsvError(f"{path}:{reader.line_num}: malformed CSV: {e}") from e
        except UnicodeDecodeError as e:
            raise StudyCsvError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    return rows


def _number(path, line, row, column, *, integer=False, low=None, high=None, empty_ok=False):
    """The field as int or float; finite and within [low, high]; None if empty and empty_ok."""
    text = row[column].strip()
    if text == "":
        if empty_ok:
            return None
        raise StudyCsvError(f"{path}:{line}: column {column} is empty")
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise StudyCsvError(f"{path}:{line}: column {column} is '{text}', not {kind}") from None
    if not math.isfinite(value):
        raise StudyCsvError(f"{path}:{line}: column {column} is {text}, not finite")
    if low is not None and value < low:
        raise StudyCsvError(f"{path}:{line}: column {column} is {text}, below {low}" +
                            (f" (the range is [{low}, {high}])" if high is not None else ""))
    if high is not None and value > high:
        raise StudyCsvError(f"{path}:{line}: column {column} is {text}, above {high} (the range is [{low}, {high}])")
    return value


def _method(path, line, row):
    method = row["method"].strip()
    if not method:
        raise StudyCsvError(f"{path}:{line}: column method is empty")
    return method


def read_summary(path):
    """method -> row (the CSV's strings, every field checked), in file order."""
    out = {}
    for line, row in _rows(path, SUMMARY_COLUMNS):
        method = _method(path, line, row)
        if method in out:
            raise StudyCsvError(f"{path}:{line}: method {method} appears twice")
        runs = _number(path, line, row, "runs", integer=True, low=0)
        diverged = _number(path, line, row, "diverged", integer=True, low=0)
        if diverged > runs:
            raise StudyCsvError(f"{path}:{line}: {diverged} diverged runs of {runs}")
        # empty when every run diverged (no accuracy) or for STL's own Δ columns in some writers
        _number(path, line, row, "accuracy_mean", low=0, high=100, empty_ok=True)
        _number(path, line, row, "accuracy_std", low=0, empty_ok=True)
        for column in ("delta_vs_stl", "delta_se", "seconds_per_epoch", "ms_per_step"):
            _number(path, line, row, column, low=0 if column != "delta_vs_stl" else None, empty_ok=True)
        for column in ("delta_vs_stl_dev", "delta_dev_se"):
            if row.get(column) is not None:
                _number(path, line, row, column, low=0 if column == "delta_dev_se" else None, empty_ok=True)
        out[method] = row
    return out


def read_runs(path):
    """method -> {seed: test accuracy in %}, every field checked, no (method, seed) twice."""
    out = {}
    for line, row in _rows(path, RUNS_COLUMNS):
        method = _method(path, line, row)
        seed = _number(path, line, row, "seed", integer=True)
        accuracy = _number(path, line, row, "accuracy", low=0, high=100)
        if seed in out.setdefault(method, {}):
            raise StudyCsvError(f"{path}:{line}: method {method}, seed {seed} appears twice")
        out[method][seed] = accuracy
    return out


def read_curve(path):
    """(method, per-epoch monitor accuracy in %) of one demo run; epochs numbered 1, 2, ..."""
    method, curve = None, []
    for line, row in _rows(path, CURVE_COLUMNS):
        run = row["run"].strip()
        this = run.split("/")[0]
        if not this:
            raise StudyCsvError(f"{path}:{line}: column run is empty")
        if method is not None and this != method:
            raise StudyCsvError(f"{path}:{line}: run {run} in a file of method {method}")
        method = this
        epoch = _number(path, line, row, "epoch", integer=True)
        if epoch != len(curve) + 1:
            raise StudyCsvError(f"{path}:{line}: epoch {epoch} where {len(curve) + 1} was due")
        curve.append(100 * _number(path, line, row, "val_accuracy0", low=0, high=1))
    if method is None:
        raise StudyCsvError(f"{path}: no epochs (header only)")
    return method, curve


def check_runs_match_summary(summary_path, summary, runs_path, runs):
    """The runs CSV and the summary CSV of one setting describe the same runs."""
    for method, seeds in runs.items():
        if method not in summary:
            raise StudyCsvError(f"{runs_path}: method {method} has runs but no row in {summary_path}")
        finished = int(summary[method]["runs"]) - int(summary[method]["diverged"])
        if len(seeds) != finished:
            raise StudyCsvError(f"{runs_path}: method {method} has {len(seeds)} runs, {summary_path} "
                                f"says {finished} finished")
    for method, row in summary.items():
        if method not in runs and int(row["runs"]) > int(row["diverged"]):
            raise StudyCsvError(f"{summary_path}: method {method} has {row['runs']} runs, none in {runs_path}")
