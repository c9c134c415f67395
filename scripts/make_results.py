#!/usr/bin/env python3
"""Turns a study directory (benchmarks/study.sh) into docs/RESULTS.md and PNG plots.

    python3 scripts/make_results.py STUDY_DIR [--docs docs] [--no-plots]

Needs matplotlib (scripts/setup.sh --plots) unless --no-plots.  Reads each setting's summary CSV (final accuracy on
the full test set, paired differences to STL), its runs CSV (one accuracy per run), the partial
runs CSV of a command that did not finish (partial_runs_*.csv: the runs it did finish, pooled
like any other; the report names those directories) and per-run CSVs (per-epoch accuracy on the
monitor subset of the test set)."""
import argparse
import datetime
import glob
import math
import os
import re
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
import study_csv  # noqa: E402  (the checked CSV readers, shared with torch_study.py --add)

plt = None  # matplotlib.pyplot, imported in main() unless --no-plots
written_plots = set()  # file names save_plot wrote in this run
# The names of the plots this script writes; any other file in docs/img is the user's own.
GENERATED_PLOT = re.compile(r"^(accuracy_vs_epoch_.+|accuracy_vs_size_.+|weight_sweep_.+|seconds_per_epoch)\.png$")

SETTING = re.compile(r"^(half2|parity2|super5)_(mlp|cnn)_n(\d+)$")
TORCH = re.compile(r"^(half2|parity2|super5)_(mlp|cnn)_n(\d+)_torch$")  # benchmarks/torch_study.py
# more seeds of a setting, e.g. super5_mlp_n300_seeds9-16, half2_mlp_n300_devseeds4-19(_torch)
EXTRA = re.compile(r"^(half2|parity2|super5)_(mlp|cnn)_n(\d+)_[a-z]*seeds\d+-\d+(_torch)?$")
# the auxiliary-weight sweep; _torch: torch_study.py --aux-weight W; _seedsS-T: more seeds of a
# sweep point, pooled with its first directory as the main study's extra-seed directories are
SWEEP = re.compile(r"^sweep_(half2|parity2|super5)_(mlp|cnn)_n(\d+)_w([0-9.]+)(?:_seeds\d+-\d+)?(_torch)?$")


def log_ticks(ax, ticks, labels, base=10):
    """A log-scaled x axis with a labelled tick at each value and no minor ticks."""
    ax.set_xscale("log", base=base)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels)
    ax.minorticks_off()


def save_plot(fig, ax, path, xlabel, ylabel, title, legend_size=8):
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written_plots.add(os.path.basename(path))


def remove_stale_plots(img, written):
    """Deletes the plots an earlier run wrote that this run did not, e.g. the per-epoch plot of a
    size that is no longer a model's middle size: nothing links to them, and a reader browsing
    docs/img would take them for current.  Only names this script writes are touched."""
    removed = sorted(name for name in os.listdir(img) if GENERATED_PLOT.match(name) and name not in written)
    for name in removed:
        os.remove(os.path.join(img, name))
    return removed


def only_file(directory, pattern):
    """The one file of a setting matching pattern, or None; two are ambiguous."""
    files = glob.glob(os.path.join(directory, pattern))
    if len(files) > 1:
        raise study_csv.StudyCsvError(f"{directory}: {len(files)} files match {pattern}, one expected")
    return files[0] if files else None


def read_summary(directory):
    path = only_file(directory, "summary_*.csv")
    if path is None:
        return None
    summary = study_csv.read_summary(path)
    runs_path = only_file(directory, "runs_*.csv")
    if runs_path:  # older demo runs have no runs CSV
        study_csv.check_runs_match_summary(path, summary, runs_path, study_csv.read_runs(runs_path))
    return summary


def read_curves(directory):
    """method -> list (per seed) of per-epoch monitor accuracy.  In the directory of a command that
    did not finish, only the finished runs' curves (an unfinished run's log stops mid-way)."""
    curves = defaultdict(list)
    partial = partial_runs_file(directory)
    finished = study_csv.read_runs(partial) if partial else None
    for path in sorted(glob.glob(os.path.join(directory, "*_seed*.csv"))):
        method, curve = study_csv.read_curve(path)
        seed = int(re.search(r"_seed(\d+)\.csv$", path).group(1))
        if finished is not None and seed not in finished.get(method, {}):
            continue
        curves[method].append(curve)
    return curves


def partial_runs_file(directory):
    """The partial runs CSV a command leaves until it finishes (the demo and torch_study write it
    after every run), or None."""
    return only_file(directory, "partial_runs_*.csv")


def runs_of(row):
    """Finished runs behind a summary row (a single run has no spread to show)."""
    return int(row.get("runs") or 0) - int(row.get("diverged") or 0)


def fmt(row, key_mean, key_sd):
    if not row or row.get(key_mean, "") == "":
        return "—"
    return spread(float(row[key_mean]), float(row[key_sd]), runs_of(row))


BASELINES = ("stl", "stl@dev")


class SettingRuns(defaultdict):
    """method -> {seed: accuracy} of one setting and library, every directory pooled. Beside it, the
    OpenBLAS kernel each run used (kernel_of[method][seed], from the run log; None where no log says)
    and the baselines (STL, stl@dev) by kernel (base_by_kernel[base][kernel][seed])."""

    def __init__(self):
        super().__init__(dict)
        self.kernel_of = defaultdict(dict)
        self.base_by_kernel = defaultdict(lambda: defaultdict(dict))


def baseline(runs, method, base):
    """{seed: accuracy} of base to pair method's seeds with: the baseline run on the kernel method's
    run used, where there is one (a rerun on another kernel differs from the first run in the last
    digits, and only a run on the same kernel shares its rounding), else the pooled one."""
    merged = dict(runs.get(base, {}))
    by_kernel = getattr(runs, "base_by_kernel", {}).get(base, {})
    for seed, kernel in getattr(runs, "kernel_of", {}).get(method, {}).items():
        if seed in by_kernel.get(kernel, {}):
            merged[seed] = by_kernel[kernel][seed]
    return merged


def gemm_kernel(directory, method):
    """The OpenBLAS kernel method's runs in directory used, or None: from the run log beside the
    directory (<dir>.log: the demo's and torch_study's "GEMM: ... kernel X," line above the run's
    result; the first such line for a run the log does not report), else from
    <dir>.kernels, which names it per method ("method kernel" lines, # comments) for runs made
    before their logs named the kernel, as docs/study/README.txt's notes of those sessions record it."""
    base = directory.rstrip(os.sep)
    if os.path.exists(base + ".log"):
        # A log can hold several commands (appended), on different machines: each run's kernel is
        # the one named by the last GEMM line above its result line.
        current, first, ran = None, None, set()
        finished = re.compile(r"(?:^|\s)" + re.escape(method) + r"\s+test accuracy")
        for line in open(base + ".log", errors="replace"):
            found = re.match(r"GEMM: .*\bkernel (\S+),", line)
            if found:
                current = found.group(1)
                first = first or current
            elif current and finished.search(line):
                ran.add(current)
        if len(ran) > 1:
            raise study_csv.StudyCsvError(f"{base}.log: {method}'s runs name {len(ran)} GEMM kernels "
                                          f"({', '.join(sorted(ran))}); one directory pairs on one kernel per method")
        if ran or first:
            return ran.pop() if ran else first
    if os.path.exists(base + ".kernels"):
        for number, line in enumerate(open(base + ".kernels", errors="replace"), 1):
            words = line.split("#")[0].split()
            if len(words) not in (0, 2):
                raise study_csv.StudyCsvError(f"{base}.kernels line {number}: expected 'method kernel', got {line.strip()!r}")
            if words and words[0] == method:
                return words[1]
    return None


# "started 2026-12-07T05:11:32Z": the first line the demo and torch_study print (directories run
# before they did are listed in the study's started.txt).
STARTED = re.compile(r"^started (\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d)?)Z\b")
STARTED_FILE = "started.txt"


def parse_utc(text, where):
    for layout in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"):
        try:
            return datetime.datetime.strptime(text, layout)
        except ValueError:
            pass
    raise study_csv.StudyCsvError(f"{where}: {text!r} is not a UTC time (YYYY-MM-DDTHH:MM[:SS]Z)")


def start_times(study):
    """directory -> when its first command started, for the directories that say. From the earliest
    "started ...Z" line of <dir>.log, else from <study>/started.txt ("directory YYYY-MM-DDTHH:MM[:SS]Z"
    lines, # comments), which records it for directories run before the logs did."""
    recorded, path = {}, os.path.join(study, STARTED_FILE)
    if os.path.exists(path):
        for number, line in enumerate(open(path, errors="replace"), 1):
            words = line.split("#")[0].split()
            if not words:
                continue
            if len(words) != 2 or not words[1].endswith("Z"):
                raise study_csv.StudyCsvError(f"{path} line {number}: expected 'directory YYYY-MM-DDTHH:MM[:SS]Z', "
                                              f"got {line.strip()!r}")
            if words[0] in recorded:
                raise study_csv.StudyCsvError(f"{path} line {number}: {words[0]} is listed twice")
            recorded[words[0]] = parse_utc(words[1][:-1], f"{path} line {number}")
    for log in glob.glob(os.path.join(glob.escape(study), "*.log")):
        stamps = [parse_utc(m.group(1), log) for m in map(STARTED.match, open(log, errors="replace")) if m]
        if stamps:
            recorded[os.path.basename(log)[:-len(".log")]] = min(stamps)
    return recorded


def chronological(study, entries):
    """entries in the order their directories started; those with no record of it after the rest,
    by name. The order decides which run a setting's pooled rows keep when two directories ran one
    baseline seed (a rerun on another kernel): the first, so a directory added later never moves
    the rows the report already had."""
    started = start_times(study)
    unrecorded = sorted(e for e in entries if e not in started and os.path.isdir(os.path.join(study, e))
                        and any(r.match(e) for r in (SETTING, TORCH, EXTRA, SWEEP)))
    if unrecorded:
        # Harmless until two of them rerun one baseline seed on different kernels; then name order decides.
        print(f"make_results: no start time for {', '.join(unrecorded)} (no 'started' line in its log, "
              f"not in {STARTED_FILE}): ordered by name after the others", file=sys.stderr)
    return sorted(entries, key=lambda e: (0, started[e], e) if e in started else (1, datetime.datetime.min, e))


def pool_runs(runs, path, method, seeds, sources):
    """Adds one directory's runs of method to the setting's pooled runs. A seed that two directories
    both ran must agree, but for a baseline rerun on another kernel (gemm_kernel names both): that
    one pairs with the runs on its kernel (runs.base_by_kernel), and the pooled rows keep the run of
    the directory that started first (write_report visits them in that order: chronological)."""
    pooled, source, kernel = runs[method], sources[method], gemm_kernel(path, method)
    same_kernel = runs.base_by_kernel[method][kernel] if method in BASELINES else {}
    for seed, accuracy in seeds.items():
        first = same_kernel.get(seed, pooled.get(seed)) if kernel else pooled.get(seed)
        # Older runs wrote accuracy * 100 unrounded (95.89999999999999), newer ones 95.9; on a test
        # set of 10,000 images a real difference is at least 0.01.
        if first is not None and abs(first - accuracy) > 1e-6:
            other = gemm_kernel(source[seed], method)
            if not (method in BASELINES and kernel and other and other != kernel and seed not in same_kernel):
                raise study_csv.StudyCsvError(f"{path}: {method} seed {seed} is {accuracy} here, "
                                              f"{first} in another directory of this setting")
        if method in BASELINES:
            runs.base_by_kernel[method][kernel][seed] = accuracy
        if seed not in pooled:  # the pooled row keeps the earliest directory's run (and pairs on its kernel)
            pooled[seed], source[seed], runs.kernel_of[method][seed] = accuracy, path, kernel


def pooled_row(runs, method):
    """A summary row (accuracy mean/std, paired Δ vs STL) from per-seed runs, extra seeds included."""
    if method not in runs or "stl" not in runs or len(runs[method]) < 1:
        return None
    acc = list(runs[method].values())
    row = {"runs": len(acc), "diverged": 0, "accuracy_mean": statistics.mean(acc),
           "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0}
    if method != "stl":
        d = paired(runs[method], baseline(runs, method, "stl"))
        row["delta_vs_stl"], row["delta_se"] = (d[0], d[1]) if d else ("", "")
    return row


def spread(value, error, runs, sign=""):
    """value ± error, or the value alone where a single run gives no spread to measure."""
    return f"{value:{sign}.2f} ± {error:.2f}" if runs > 1 else f"{value:{sign}.2f}"


def _beta_continued_fraction(a, b, x):
    """The continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def incomplete_beta(a, b, x):
    """I_x(a, b), the regularised incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_tail(t, df):
    """P(|T| > t) for Student's t with df (real, > 0) degrees of freedom.  (SciPy's stats.t.sf
    times two; written out because the report needs the standard library only.)"""
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_critical(df, alpha=0.05):
    """The t with P(|T| > t) = alpha (bisection: the tail falls monotonically in t)."""
    lo, hi = 0.0, 1e4
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_two_sided_tail(mid, df) > alpha else (lo, mid)
    return 0.5 * (lo + hi)


def welch_df(var_a, n_a, var_b, n_b):
    """Welch-Satterthwaite degrees of freedom of se² = var_a + var_b, each from n - 1 degrees of
    freedom (var = sd²/n for a mean, se² for a paired mean difference); None when both are 0."""
    if var_a + var_b <= 0:
        return None
    return (var_a + var_b) ** 2 / (var_a ** 2 / (n_a - 1) + var_b ** 2 / (n_b - 1))


def welch_test(difference, se, var_a, n_a, var_b, n_b):
    """(P(|t| > 2) under agreement, significant at 5 %) for one unpaired comparison whose se² is
    var_a + var_b; (0, False) when neither side has a spread."""
    df = welch_df(var_a, n_a, var_b, n_b)
    if df is None:
        return 0.0, False
    return t_two_sided_tail(2.0, df), abs(difference) > t_critical(df) * se


def torch_section(settings, torch_runs, methods, study, per_seed):
    """auxl beside the PyTorch reference (benchmarks/torch_study.py) for every setting both ran.
    Where both libraries have per-seed runs of a method, the rows pool every seed they have
    (extra-seed directories included); otherwise they come from the summaries."""
    readme = os.path.join(study, "README.txt")
    torch_lines = [line for line in open(readme).read().splitlines() if "torch_study" in line] if os.path.exists(readme) else []
    out = ["## auxl beside PyTorch", "",
           "The same protocol in idiomatic PyTorch (`benchmarks/torch_study.py`, models and methods of",
           "`benchmarks/torch_reference.py`). The two libraries draw their subsets, initialisations and",
           "batch orders from different generators, so their runs are independent samples: the",
           "differences below carry unpaired standard errors, sqrt(sd₁²/n₁ + sd₂²/n₂) for accuracies and",
           "sqrt(se₁² + se₂²) for the gains over STL. `*` marks a difference larger than twice its",
           "standard error, `†` one significant by Welch's t-test at the 5 % level (its critical value for",
           "three seeds a side is 2.8 standard errors, for six 2.2). Where a setting has extra seeds",
           "(directories like `half2_mlp_n300_seeds4-19`),",
           "both libraries' rows pool all of them; the number of seeds is in brackets.", ""]
    if torch_lines:
        out += ["```"] + torch_lines + ["```", ""]
    out += ["| setting | method | auxl accuracy | PyTorch accuracy | auxl − PyTorch | auxl Δ vs STL | "
            "PyTorch Δ vs STL | difference of Δ |",
            "|---|---|---|---|---|---|---|---|"]
    flagged = total = single = 0
    # Under agreement, how many of the 2-SE marks chance alone would give (each comparison's
    # P(|t_df| > 2), Welch's df), and how many differ by Welch's t-test at 5 %.
    expected_flags, welch_significant = 0.0, 0
    gain_differences = []
    by_method = {}  # method -> [(difference of gains, its standard error, Welch-significant)]
    by_setting = {}  # setting -> [difference of gains]: its rows share the STL runs
    for key in sorted(set(settings) & set(torch_runs)):
        ours, theirs = settings[key][0], torch_runs[key]
        seeds_ours, seeds_theirs = per_seed.get((key, "auxl"), {}), per_seed.get((key, "torch"), {})
        for method in methods:
            a, b = ours.get(method), theirs.get(method)
            pa, pb = pooled_row(seeds_ours, method), pooled_row(seeds_theirs, method)
            if pa and pb:
                a, b = pa, pb
            if not a or not b or a.get("accuracy_mean", "") == "" or b.get("accuracy_mean", "") == "":
                continue
            ma, sa, na = float(a["accuracy_mean"]), float(a["accuracy_std"]), runs_of(a)
            mb, sb, nb = float(b["accuracy_mean"]), float(b["accuracy_std"]), runs_of(b)
            diff, se = ma - mb, (sa * sa / max(na, 1) + sb * sb / max(nb, 1)) ** 0.5
            if min(na, nb) < 2:
                # One run has no spread: the row is shown, but no standard error is claimed for it and
                # it stays out of every count and average below.
                single += 1
                da = db = None
                if method != "stl" and a.get("delta_vs_stl", "") != "" and b.get("delta_vs_stl", "") != "":
                    da, db = float(a["delta_vs_stl"]), float(b["delta_vs_stl"])
                out.append("| " + " | ".join([
                    f"{key[0]} {key[1]} n={key[2]}", method, f"{spread(ma, sa, na)} ({na})", f"{spread(mb, sb, nb)} ({nb})",
                    f"{diff:+.2f} (one seed)",
                    *(["—", "—", "—"] if da is None else [spread(da, float(a["delta_se"]), na, "+"),
                                                          spread(db, float(b["delta_se"]), nb, "+"),
                                                          f"{da - db:+.2f} (one seed)"])]) + " |")
                continue
            total += 1
            mark = "*" if abs(diff) > 2 * se else ""
            flagged += bool(mark)
            chance, significant = welch_test(diff, se, sa * sa / na, na, sb * sb / nb, nb)
            expected_flags += chance
            welch_significant += significant
            mark += "†" if significant else ""
            cells = [f"{key[0]} {key[1]} n={key[2]}", method, f"{ma:.2f} ± {sa:.2f} ({na})", f"{mb:.2f} ± {sb:.2f} ({nb})",
                     f"{diff:+.2f} ± {se:.2f}{mark}"]
            if method == "stl":
                cells += ["—", "—", "—"]
            else:
                da, ea, db, eb = (float(a["delta_vs_stl"]), float(a["delta_se"]), float(b["delta_vs_stl"]),
                                  float(b["delta_se"]))
                dd, de = da - db, (ea * ea + eb * eb) ** 0.5
                gain_differences.append(dd)
                by_setting.setdefault(key, []).append(dd)
                total += 1
                dmark = "*" if abs(dd) > 2 * de else ""
                flagged += bool(dmark)
                # each gain's standard error comes from its own paired seeds
                chance, significant = welch_test(dd, de, ea * ea, na, eb * eb, nb)
                expected_flags += chance
                welch_significant += significant
                dmark += "†" if significant else ""
                by_method.setdefault(method, []).append((dd, de, significant))
                cells += [f"{da:+.2f} ± {ea:.2f}", f"{db:+.2f} ± {eb:.2f}", f"{dd:+.2f} ± {de:.2f}{dmark}"]
            out.append("| " + " | ".join(cells) + " |")
    out += ["", f"{flagged} of {total} comparisons differ by more than twice their standard error. With as few "
            "as three seeds per side a standard error is itself a rough estimate, so chance alone crosses twice it "
            "more often than a normal distribution's 5 %: with each comparison's Welch degrees of freedom, about "
            f"{expected_flags:.1f} would if the implementations agree ({0.05 * total:.1f} by the normal rule). By "
            f"Welch's t-test at the 5 % level {welch_significant} of {total} differ ({0.05 * total:.1f} expected by "
            "chance). The methods of one library share each seed's training subset, so the rows of a setting are "
            "not independent."
            + (f" {single} row{'s' if single > 1 else ''} with a single seed on one side {'are' if single > 1 else 'is'} shown "
               "without a standard error and left out of this count and of the averages below." if single else "")]
    if len(gain_differences) > 1:
        mean = statistics.mean(gain_differences)
        se = statistics.stdev(gain_differences) / len(gain_differences) ** 0.5
        out += ["", f"Gain over STL, auxl minus PyTorch, averaged over the {len(gain_differences)} method × setting "
                f"rows: {mean:+.3f} ± {se:.3f} points (mean ± standard error over rows)."]
    if len(by_setting) > 1:
        # The rows of one setting share its STL runs in each library, so they move together;
        # averaging within a setting first gives independent samples.
        per_setting = [statistics.mean(v) for v in by_setting.values()]
        mean = statistics.mean(per_setting)
        se = statistics.stdev(per_setting) / len(per_setting) ** 0.5
        out += ["", f"The rows of a setting share its STL runs, so they are not independent: averaged within each "
                f"setting first, over the {len(per_setting)} settings: {mean:+.3f} ± {se:.3f} points."]
    if by_method:
        # Per method over its settings: the settings are independent experiments, so the mean's
        # standard error combines the per-setting ones.
        out += ["", "Per method, over the settings both libraries ran (gain over STL, auxl minus PyTorch):", "",
                "| method | settings | mean difference of Δ | beyond 2 SE | Welch 5 % |", "|---|---|---|---|---|"]
        for method in methods:
            rows = by_method.get(method)
            if not rows:
                continue
            mean = statistics.mean(d for d, _, _ in rows)
            se = sum(e * e for _, e, _ in rows) ** 0.5 / len(rows)
            beyond = sum(abs(d) > 2 * e for d, e, _ in rows)
            significant = sum(w for _, _, w in rows)
            out.append(f"| {method} | {len(rows)} | {mean:+.2f} ± {se:.2f}{'*' if abs(mean) > 2 * se else ''} | {beyond} | "
                       f"{significant} |")
    out.append("")
    return out


def read_runs(directory):
    """method -> {seed: accuracy} from the runs CSV (both libraries write one) and the partial runs
    CSV of a command that has not finished; a run both list must have one accuracy."""
    out = defaultdict(dict)
    for path in (only_file(directory, "runs_*.csv"), partial_runs_file(directory)):
        for method, seeds in (study_csv.read_runs(path) if path else {}).items():
            for seed, accuracy in seeds.items():
                if out[method].setdefault(seed, accuracy) != accuracy:
                    raise study_csv.StudyCsvError(f"{path}: {method} seed {seed} is {accuracy} here, "
                                                  f"{out[method][seed]} in the runs CSV beside it")
    return out


def uses_dev_split(method):
    """The compositions that hold out a dev set: module-aware, RL-AUX and DTG."""
    return "module_aware" in method or method.startswith("rl_aux") or method.startswith("dtg")


def paired(a, b):
    """(mean, standard error, seeds) of a − b over the seeds both have."""
    d = [a[s] - b[s] for s in sorted(set(a) & set(b))]
    if not d:
        return None
    return statistics.mean(d), (statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else 0.0), len(d)


def dev_split_section(runs):
    """runs: (setting, library) -> method -> {seed: accuracy}, extra-seed directories merged.
    The dev-set methods train on 95 % of the subset; stl@dev is STL on that same part, so their
    gain over stl@dev is their own effect, without the split's cost."""
    def cell(v):
        if not v:
            return "—"
        return f"{v[0]:+.2f} ({v[2]})" if v[2] < 2 else f"{v[0]:+.2f} ± {v[1]:.2f} ({v[2]})"

    rows = []
    for key in sorted({k for k, _ in runs}):
        ours, theirs = runs.get((key, "auxl"), {}), runs.get((key, "torch"), {})
        if "stl@dev" not in ours and "stl@dev" not in theirs:
            continue
        methods = ["stl@dev"] + [m for m in dict.fromkeys(list(ours) + list(theirs)) if uses_dev_split(m)]
        for method in methods:
            base = "stl" if method == "stl@dev" else "stl@dev"
            va = paired(ours[method], baseline(ours, method, base)) if method in ours and base in ours else None
            vb = paired(theirs[method], baseline(theirs, method, base)) if method in theirs and base in theirs else None
            diff = "—"
            if va and vb:
                d, e = va[0] - vb[0], (va[1] ** 2 + vb[1] ** 2) ** 0.5
                # a single seed on either side has no spread to set a standard error by
                diff = f"{d:+.2f} (one seed)" if min(va[2], vb[2]) < 2 else f"{d:+.2f} ± {e:.2f}{'*' if abs(d) > 2 * e else ''}"
            label = "stl@dev vs STL (the split's cost)" if method == "stl@dev" else f"{method} vs stl@dev"
            rows.append(f"| {key[0]} {key[1]} n={key[2]} | {label} | {cell(va)} | {cell(vb)} | {diff} |")
    if not rows:
        return []
    return ["## The dev-set methods against STL on the same split", "",
            "Module-aware, RL-AUX and DTG hold out 5 % of the training subset (stratified by fine class) as",
            "their dev set and train on the rest; `stl@dev` is STL trained on exactly that rest (auxl:",
            "`auxl::dev_split`, the trainer's own split; PyTorch: the same rule, its own random draw). The",
            "first row of each setting is what the split costs STL; the others are each dev-set method's",
            "gain over STL on the same examples, paired by seed: mean ± standard error (seeds); runs",
            "with extra seeds (directories like `super5_mlp_n300_seeds9-16`) are pooled in. The last column is auxl minus",
            "PyTorch with an unpaired standard error (`*`: beyond twice it).", "",
            "| setting | comparison | auxl | PyTorch | auxl − PyTorch |", "|---|---|---|---|---|"] + rows + [""]


def per_seed_section(runs):
    """runs: (setting, library) -> method -> {seed: accuracy}. At each model's largest training size
    a run costs hours, seeds are few and still arriving, so the means in the tables above hide
    which seed gained what; this lists every seed's paired difference, per library (against STL,
    and for the dev-set methods against stl@dev too)."""
    largest = defaultdict(int)
    for (h, model, n), _ in runs:
        largest[model] = max(largest[model], n)

    def cell(side, method, base):
        if method not in side or base not in side:
            return "—"
        paired_base = baseline(side, method, base)
        seeds = sorted(set(side[method]) & set(paired_base))
        return ", ".join(f"{s}: {side[method][s] - paired_base[s]:+.2f}" for s in seeds) or "—"

    rows = []
    for key in sorted({k for k, _ in runs if k[2] == largest[k[1]]}, key=lambda k: (k[1], k[0])):
        ours, theirs = runs.get((key, "auxl"), {}), runs.get((key, "torch"), {})
        methods = [m for m in dict.fromkeys(list(ours) + list(theirs)) if m not in BASELINES]
        for method in (["stl@dev"] if "stl@dev" in ours or "stl@dev" in theirs else []) + methods:
            bases = ["stl"] + (["stl@dev"] if uses_dev_split(method) else [])
            for base in bases:
                a, b = cell(ours, method, base), cell(theirs, method, base)
                if a == b == "—":
                    continue
                rows.append(f"| {key[0]} {key[1]} n={key[2]} | {method} vs {base} | {a} | {b} |")
    if not rows:
        return []
    return ["## Every seed at the full training set", "",
            "Each run's difference to the baseline run of the same seed (and OpenBLAS kernel), in",
            "points, as `seed: Δ`, at each model's largest training size, where seeds are few and the",
            "means above hide what each one did.", "",
            "| setting | comparison | auxl | PyTorch |", "|---|---|---|---|"] + rows + [""]


def main():
    global plt
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("--docs", default="docs")
    ap.add_argument("--no-plots", action="store_true", help="write the tables only (no matplotlib needed)")
    args = ap.parse_args()
    if not args.no_plots:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot
        except ImportError:
            raise SystemExit("make_results: the plots need matplotlib (scripts/setup.sh --plots); "
                             "--no-plots writes the tables only") from None
        plt = matplotlib.pyplot
    try:
        write_report(args)
    except study_csv.StudyCsvError as e:  # nothing is written: the old report and plots survive
        raise SystemExit(f"make_results: {e}") from None


def write_report(args):
    img = os.path.join(args.docs, "img")
    os.makedirs(img, exist_ok=True)

    settings, sweeps, torch_runs = {}, {}, {}
    extra_auxl = defaultdict(list)  # setting -> [(first seed, summary, curves, methods run)] of its auxl extra-seed directories
    per_seed = defaultdict(SettingRuns)  # (setting, library) -> method -> {seed: accuracy}
    sweep_seeds = defaultdict(SettingRuns)  # (setting, λ, library) -> method -> {seed: accuracy}
    sources = defaultdict(lambda: defaultdict(dict))  # (setting, library) -> method -> {seed: directory}
    unfinished = []  # directories of commands that did not finish (their partial runs CSV)
    for entry in chronological(args.study, os.listdir(args.study)):
        path = os.path.join(args.study, entry)
        m, s, t, x = SETTING.match(entry), SWEEP.match(entry), TORCH.match(entry), EXTRA.match(entry)
        if os.path.isdir(path) and not (m or s or t or x):
            # e.g. a variant's runs (torch_study --dtg-follow-schedule: *_dtgfollow_torch): never
            # pooled into the study's rows, but say so rather than drop them silently.
            print(f"make_results: {path} is not named as a study setting; left out", file=sys.stderr)
        if (m or t or x or s) and os.path.isdir(path) and partial_runs_file(path):
            unfinished.append(entry)
        if (m or t or x) and os.path.isdir(path):
            g = (m or t or x).groups()
            library = "torch" if t or (x and g[3]) else "auxl"
            here = read_runs(path)
            key = ((g[0], g[1], int(g[2])), library)
            for method, seeds in here.items():
                pool_runs(per_seed[key], path, method, seeds, sources[key])
        if x and not g[3] and os.path.isdir(path):
            first_seed = int(re.search(r"seeds(\d+)-\d+", entry).group(1))
            extra_auxl[(g[0], g[1], int(g[2]))].append((first_seed, read_summary(path) or {}, read_curves(path), list(here)))
        if t and os.path.isdir(path):
            summary = read_summary(path)
            if summary:
                torch_runs[(t.group(1), t.group(2), int(t.group(3)))] = summary
        elif m and os.path.isdir(path):
            summary = read_summary(path)
            if summary:
                settings[(m.group(1), m.group(2), int(m.group(3)))] = (summary, read_curves(path))
        elif s and os.path.isdir(path):
            key = (s.group(1), s.group(2), int(s.group(3)), float(s.group(4)), "torch" if s.group(5) else "auxl")
            summary = read_summary(path)
            if summary:
                sweeps.setdefault(key, summary)  # the first directory's; its extra seeds pool below
                for method, seeds in read_runs(path).items():
                    pool_runs(sweep_seeds[key], path, method, seeds, sources[key])
    if not settings:
        raise SystemExit(f"make_results: no finished setting in {args.study}")
    # auxl's tables pool every seed a setting has too (timings stay the main run's). A method
    # that only extra-seed directories ran gets its pooled row and curves from them, and its timing
    # from the finished one with the lowest seeds (not the one whose name sorts first: a later
    # seed's run may have shared the machine with other work; and an unfinished command's
    # directory has no timing, so it must not take the method's row first).
    for key, (summary, curves) in settings.items():
        for method, row in summary.items():
            pooled = pooled_row(per_seed.get((key, "auxl"), {}), method)
            if pooled and pooled["runs"] > int(row.get("runs") or 0):
                row.update({k: v for k, v in pooled.items() if k != "diverged"})
        for _, extra_summary, extra_curves, extra_methods in sorted(extra_auxl.get(key, []),
                                                                    key=lambda e: (e[0], not e[1])):
            # the summary's methods, then those only a partial runs CSV lists (no timing: the
            # command that ran them did not finish)
            for method in list(extra_summary) + [m for m in extra_methods if m not in extra_summary]:
                pooled = pooled_row(per_seed.get((key, "auxl"), {}), method)
                if method not in summary and pooled:
                    summary[method] = dict(pooled, seconds_per_epoch=extra_summary.get(method, {}).get("seconds_per_epoch", ""))
            for method, runs in extra_curves.items():
                curves[method].extend(runs)
    header = open(os.path.join(args.study, "README.txt")).read().strip() if os.path.exists(
        os.path.join(args.study, "README.txt")) else ""

    methods = []
    for summary, _ in settings.values():
        for method in summary:
            if method not in methods:
                methods.append(method)

    out = ["# auxl results: learning quality on Fashion-MNIST", ""]
    out += ["Generated by `python3 scripts/make_results.py " + args.study + "` from the runs of",
            "`benchmarks/study.sh` and the commands in the log below (the Fashion-MNIST demo,",
            "`build/examples/fashion_hierarchy`, 20 epochs, SGD momentum 0.9, lr 0.05 cosine-annealed,",
            "batch 128; OpenBLAS threads as the log says).", "",
            "```", header, "```", "",
            "Accuracy: primary-task test accuracy (%) on the full 10,000-image test set after the last",
            "epoch, mean ± standard deviation over seeds. Δ: the difference to STL paired by seed,",
            "mean ± standard error. Training subsets are stratified draws of the 60,000 training images",
            "(the same subset for every method of a seed). Each run is paired with the STL run on the same",
            "OpenBLAS kernel where there is one: a rerun on another kernel (its run log names the kernel;",
            "for runs made before the logs did, a <dir>.kernels file records it from the session's notes)",
            "differs in the last digits, and the baselines' rows keep the run of the directory that started first",
            "(from the `started ...Z` line of its log, else `started.txt` in the study directory).", ""]
    if unfinished:
        out += ["The finished runs of commands that did not finish are included, from the `partial_runs_*.csv`",
                "each of them left (no timing): " + ", ".join(f"`{d}`" for d in unfinished) + ".", ""]
    for (hierarchy, model) in sorted({(h, m) for h, m, _ in settings}):
        sizes = sorted(n for h, m, n in settings if h == hierarchy and m == model)
        out += [f"## {hierarchy}, {model.upper()}", ""]
        out.append("| method | " + " | ".join(f"n = {n}: accuracy | Δ vs STL" for n in sizes)
                   + f" | s / epoch (n = {sizes[-1]} unless noted) |")
        out.append("|---|" + "---|---|" * len(sizes) + "---|")
        for method in methods:
            cells = []
            for n in sizes:
                row = settings[(hierarchy, model, n)][0].get(method)
                cells.append(fmt(row, "accuracy_mean", "accuracy_std"))
                if row and method != "stl" and row.get("delta_vs_stl", "") != "":
                    cells.append(spread(float(row["delta_vs_stl"]), float(row["delta_se"]), runs_of(row), "+"))
                else:
                    cells.append("—")
            # s / epoch at the largest size this method ran (the newer methods stop short of 60,000)
            timed = [n for n in sizes if settings[(hierarchy, model, n)][0].get(method, {}).get("seconds_per_epoch")]
            spe = "—"
            if timed:
                spe = f"{float(settings[(hierarchy, model, timed[-1])][0][method]['seconds_per_epoch']):.2f}"
                spe += f" (n = {timed[-1]})" if timed[-1] != sizes[-1] else ""
            if all(c == "—" for c in cells):
                continue  # this method did not run in this hierarchy × model
            runs = "/".join(str(settings[(hierarchy, model, n)][0].get(method, {}).get("runs", "–")) for n in sizes)
            out.append(f"| {method} (seeds {runs}) | " + " | ".join(cells) + f" | {spe} |")
        out.append("")

        # Accuracy vs training-set size.
        if plt:
            fig, ax = plt.subplots(figsize=(6, 4))
            # A collapsed method (RL-AUX-w on super5 at 60,000: two seeds at 40 %) would squash every
            # other curve, so the axis stops 5 points below STL's lowest mean and a mean under that
            # is marked on the bottom edge with its value.
            stl_means = [float(settings[(hierarchy, model, n)][0]["stl"]["accuracy_mean"]) for n in sizes
                         if settings[(hierarchy, model, n)][0].get("stl", {}).get("accuracy_mean")]
            floor = min(stl_means) - 5 if stl_means else None
            off_scale, top = [], []
            for method in methods:
                xs, ys, es = [], [], []
                for n in sizes:
                    row = settings[(hierarchy, model, n)][0].get(method)
                    if row and row.get("accuracy_mean"):
                        xs.append(n)
                        ys.append(float(row["accuracy_mean"]))
                        es.append(float(row["accuracy_std"]))
                if xs:
                    line = ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
                    off_scale += [(x, y, line[0].get_color()) for x, y in zip(xs, ys) if floor is not None and y < floor]
                    top += [y + e for y, e in zip(ys, es) if floor is None or y >= floor]
            if off_scale:
                ax.set_ylim(floor, max(top) + 0.5)
                for x, y, color in off_scale:
                    ax.plot([x], [floor], marker="v", markersize=9, color=color, clip_on=False)
                    ax.annotate(f"{y:.1f} %", (x, floor), textcoords="offset points", xytext=(-8, 3), ha="right",
                                fontsize=8, color=color)
            log_ticks(ax, sizes, [f"{n:,}" for n in sizes])
            name = f"accuracy_vs_size_{hierarchy}_{model}.png"
            save_plot(fig, ax, os.path.join(img, name), "training examples", "test accuracy (%)",
                      f"{hierarchy}, {model}: accuracy vs training-set size")
            out += [f"![accuracy vs training-set size, {hierarchy}]({os.path.join('img', name)})", ""]

        # Test accuracy per epoch at the middle size.
        n = sizes[len(sizes) // 2]
        curves = settings[(hierarchy, model, n)][1]
        if curves and plt:
            fig, ax = plt.subplots(figsize=(6, 4))
            for method in methods:
                runs = curves.get(method)
                if not runs:
                    continue
                length = min(len(r) for r in runs)
                mean = [statistics.mean(r[e] for r in runs) for e in range(length)]
                ax.plot(range(1, length + 1), mean, label=method)
            name = f"accuracy_vs_epoch_{hierarchy}_{model}_n{n}.png"
            save_plot(fig, ax, os.path.join(img, name), "epoch", "test accuracy (%, monitor subset)",
                      f"{hierarchy}, {model}, n = {n}: accuracy per epoch (mean over seeds)")
            out += [f"![accuracy per epoch, {hierarchy}, n = {n}]({os.path.join('img', name)})", ""]

    if torch_runs:
        out += torch_section(settings, torch_runs, methods, args.study, per_seed)
    out += dev_split_section(per_seed)
    out += per_seed_section(per_seed)

    # Time per epoch per method: for each task and model, the setting that ran the most methods
    # (the largest such size), so every method has a bar measured at one size.
    if plt:
        fig, ax = plt.subplots(figsize=(6, 4))
        largest = {}
        for h, m, n in sorted(settings):
            if len(settings[(h, m, n)][0]) >= len(settings[(h, m, largest.get((h, m), n))][0]):
                largest[(h, m)] = n
        width = 0.8 / max(1, len(largest))
        for i, ((h, m), n) in enumerate(sorted(largest.items())):
            summary = settings[(h, m, n)][0]
            ys = [float(summary[x]["seconds_per_epoch"]) if x in summary and summary[x].get("seconds_per_epoch") else 0
                  for x in methods]
            ax.bar([j + i * width for j in range(len(methods))], ys, width=width, label=f"{h} {m} n={n}")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(methods))])
        ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
        save_plot(fig, ax, os.path.join(img, "seconds_per_epoch.png"), None, "seconds per epoch", "time per epoch",
                  legend_size=7)
        out += ["## Time per epoch", "",
                "auxl's seconds per training epoch (every training pass, the methods' own dev-batch and",
                "reward passes included; test-set monitoring excluded), for each task and model at the size",
                "that ran the most methods (the legend names it). Runs shared the cores and did not all run",
                "on one machine (the log above says which, and which OpenBLAS kernel): read ratios within",
                "one setting, not across settings.", "",
                "![seconds per epoch](img/seconds_per_epoch.png)", ""]

    # Auxiliary-weight sweep, both libraries (PyTorch: torch_study.py --aux-weight).
    for (h, m, n) in sorted({key[:3] for key in sweeps}):
        at_one = {"auxl": settings[(h, m, n)][0] if (h, m, n) in settings else None, "torch": torch_runs.get((h, m, n))}
        weights = sorted({key[3] for key in sweeps if key[:3] == (h, m, n)} | {1.0})
        out += [f"## Auxiliary-weight sweep ({h}, {m.upper()}, n = {n})", "",
                "Δ vs STL (points, paired by seed, mean ± standard error) of the human-hierarchy",
                "compositions as the auxiliary weight λ varies (λ = 1 is the main study's setting, every seed",
                "it has pooled in both libraries; a point with one seed so far has no standard error).", "",
                "| method | library | " + " | ".join(f"λ = {w:g}" for w in weights) + " |",
                "|---|---|" + "---|" * len(weights)]
        lines = []
        for method in ("human+equal", "human+cosine"):
            for library in ("auxl", "torch"):
                cells, xs, ys, es = [], [], [], []
                for w in weights:
                    summary = at_one[library] if w == 1.0 else sweeps.get((h, m, n, w, library))
                    row = summary.get(method) if summary else None
                    if w != 1.0:
                        # every seed of the point, its _seedsS-T directories included
                        pooled = pooled_row(sweep_seeds.get((h, m, n, w, library), {}), method)
                        if pooled and pooled["runs"] > runs_of(row or {}):
                            row = pooled
                    if w == 1.0 and library == "torch":
                        # λ = 1 pools every seed, extra-seed directories included, as auxl's row
                        # already does (the summary alone holds only the first directory's seeds).
                        pooled = pooled_row(per_seed.get(((h, m, n), "torch"), {}), method)
                        if pooled and pooled["runs"] > runs_of(row or {}):
                            row = pooled
                    if row and row.get("delta_vs_stl") not in (None, ""):
                        d, se = float(row["delta_vs_stl"]), float(row["delta_se"])
                        cells.append(spread(d, se, runs_of(row), sign="+"))
                        xs.append(w)
                        ys.append(d)
                        es.append(se)
                    else:
                        cells.append("—")
                if xs:
                    out.append(f"| {method} | {'PyTorch' if library == 'torch' else 'auxl'} | " + " | ".join(cells) + " |")
                    lines.append((method, library, xs, ys, es))
        if plt:
            fig, ax = plt.subplots(figsize=(6, 4))
            for method, library, xs, ys, es in lines:
                ax.errorbar(xs, ys, yerr=es, marker="o" if library == "auxl" else "s", capsize=3,
                            linestyle="-" if library == "auxl" else "--",
                            label=f"{method} ({'PyTorch' if library == 'torch' else 'auxl'})")
            ax.axhline(0, color="grey", lw=0.8)
            log_ticks(ax, weights, [f"{w:g}" for w in weights], base=2)
            name = f"weight_sweep_{h}_{m}_n{n}.png"
            save_plot(fig, ax, os.path.join(img, name), "auxiliary weight λ", "Δ accuracy vs STL (points)",
                      f"{h}, {m}, n = {n}")
            out += ["", f"![weight sweep]({os.path.join('img', name)})"]
        out.append("")

    target = os.path.join(args.docs, "RESULTS.md")
    with open(target + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(target + ".tmp", target)  # the old report survives a failed run
    print(f"wrote {target}" + ("" if args.no_plots else f" and {img}/*.png"))
    if not args.no_plots:  # --no-plots writes none, so it must not judge which are stale
        for name in remove_stale_plots(img, written_plots):
            print(f"removed {os.path.join(img, name)}: no longer written")


if __name__ == "__main__":
    main()
