#!/bin/sh
# Learning-quality study: runs the Fashion-MNIST demo (build/examples/fashion_hierarchy) over a
# grid of primary tasks, training-set sizes, methods and seeds, one output directory per setting
# (its per-run CSVs and summary CSV), then an auxiliary-weight sweep.  scripts/make_results.py
# turns the directory into docs/RESULTS.md and PNG plots.
#   benchmarks/study.sh OUT_DIR [grid]
# grid: 'small'  (default) half2, parity2, super5 x 300, 1000, 6000 examples x MLP x stl,
#                human+equal, human+cosine, maxl+equal x 3 seeds; sweep of the human+equal and
#                human+cosine weight (0.25 ... 8) on half2, 1000 examples, 3 seeds
#       'report' the committed docs/study: every method (and stl@dev) with the MLP at 300, 1000
#                and 6000 examples and with the CNN at 300; the four methods with the MLP at
#                60,000 examples and with the CNN at 1000; super5 at 300 with 8 seeds; the weight
#                sweep also with the CNN (half2, 300 examples); 1 OpenBLAS thread per run (many
#                hours on one core; `benchmarks/torch_study.py OUT --grid report` on the other
#                gives the PyTorch side).  The extra-seed directories (_seeds*, _devseeds*) are
#                separate commands, listed in docs/study/README.txt
#       'full'   the grid: 300, 1000, 6000, 60000 examples, MLP and CNN, every method,
#                5 seeds (many hours on 2 cores)
# Resumable: a setting whose summary CSV exists is skipped, and an interrupted one continues where
# its runs' checkpoints stand (the demo's --resume; state in OUT_DIR/.resume/<setting>, logs
# appended).  THREADS overrides the threads per run.
set -eu
out=${1:?usage: study.sh OUT_DIR [small|report|full]}
grid=${2:-small}
demo=${DEMO:-build/examples/fashion_hierarchy}
four="stl,human+equal,human+cosine,maxl+equal"
every="stl,stl@dev,human+equal,human+cosine,human+module_aware,human+transference,maxl+equal,rl_aux+equal,rl_aux_w+equal,dtg"
mkdir -p "$out"
case "$grid" in
    small) seeds=3; threads=${THREADS:-2} ;;
    report) seeds=3; threads=${THREADS:-1} ;;
    full) seeds=5; threads=${THREADS:-2} ;;
    *) echo "study: unknown grid '$grid' (small, report, full)" >&2; exit 2 ;;
esac
echo "# study $grid started $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $threads threads per run, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}" >> "$out/README.txt"

# setting MODEL HIERARCHY N METHODS [SEEDS]
setting() {
    dir="$out/${2}_${1}_n${3}"
    [ -f "$dir/summary_${2}_${1}.csv" ] && return 0  # resumable: finished settings are kept
    "$demo" --hierarchy "$2" --model "$1" --train-size "$3" --seeds "${5:-$seeds}" --methods "$4" \
        --threads "$threads" --out "$dir" --resume "$out/.resume/${dir##*/}" >> "$dir.log" 2>&1 \
        || { echo "study: $dir failed, see $dir.log" >&2; exit 1; }
    echo "done $dir"
}

for hierarchy in half2 parity2 super5; do
    case "$grid" in
        small) for n in 300 1000 6000; do setting mlp "$hierarchy" "$n" "$four"; done ;;
        report)
            # super5 at 300 examples has 8 seeds: 3 left its dev-set methods' gains unclear
            if [ "$hierarchy" = super5 ]; then setting mlp super5 300 "$every" 8; else setting mlp "$hierarchy" 300 "$every"; fi
            setting mlp "$hierarchy" 1000 "$every"
            setting mlp "$hierarchy" 6000 "$every"
            setting mlp "$hierarchy" 60000 "$four"
            setting cnn "$hierarchy" 300 "$every"
            setting cnn "$hierarchy" 1000 "$four" ;;
        full) for model in mlp cnn; do for n in 300 1000 6000 60000; do setting "$model" "$hierarchy" "$n" all; done; done ;;
    esac
done
# sweep MODEL N: the human+equal and human+cosine weight on half2
sweep() {
    for w in 0.25 0.5 2 4 8; do
        dir="$out/sweep_half2_${1}_n${2}_w$w"
        [ -f "$dir/summary_half2_$1.csv" ] && continue
        "$demo" --hierarchy half2 --model "$1" --train-size "$2" --seeds "$seeds" --methods stl,human+equal,human+cosine \
            --aux-weight "$w" --threads "$threads" --out "$dir" --resume "$out/.resume/${dir##*/}" >> "$dir.log" 2>&1 \
            || { echo "study: $dir failed" >&2; exit 1; }
        echo "done $dir"
    done
}
sweep mlp 1000
[ "$grid" = small ] || sweep cnn 300
echo "# finished $(date -u +%Y-%m-%dT%H:%MZ)" >> "$out/README.txt"
