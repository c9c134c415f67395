#!/bin/sh
# Learning-quality study: runs the Fashion-MNIST demo (build/examples/fashion_hierarchy) over a
# grid of primary tasks, training-set sizes, methods and seeds, one output directory per setting
# (its per-run CSVs and summary CSV), then an auxiliary-weight sweep.  scripts/make_results.py
# turns the directory into docs/RESULTS.md and PNG plots.
#   benchmarks/study.sh OUT_DIR [grid]
# grid: 'small'  (default) half2, parity2, super5 x 300, 1000, 6000 examples x MLP x stl,
#                human+equal, human+cosine, maxl+equal x 3 seeds; sweep of the human+equal and
#                human+cosine weight (0.25 ... 8) on half2, 1000 examples, 3 seeds
#       'full'   the grid: 300, 1000, 6000, 60000 examples, MLP and CNN, every method,
#                5 seeds (many hours on 2 cores)
set -eu
out=${1:?usage: study.sh OUT_DIR [small|full]}
grid=${2:-small}
demo=${DEMO:-build/examples/fashion_hierarchy}
mkdir -p "$out"
if [ "$grid" = full ]; then
    sizes="300 1000 6000 60000"; models="mlp cnn"; seeds=5; methods=all
else
    sizes="300 1000 6000"; models="mlp"; seeds=3; methods="stl,human+equal,human+cosine,maxl+equal"
fi
echo "# study $grid started $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}" > "$out/README.txt"
for model in $models; do
    for hierarchy in half2 parity2 super5; do
        for n in $sizes; do
            dir="$out/${hierarchy}_${model}_n${n}"
            [ -f "$dir/summary_${hierarchy}_${model}.csv" ] && continue  # resumable: finished settings are kept
            "$demo" --hierarchy "$hierarchy" --model "$model" --train-size "$n" --seeds "$seeds" --methods "$methods" \
                --threads 2 --out "$dir" > "$dir.log" 2>&1 || { echo "study: $dir failed, see $dir.log" >&2; exit 1; }
            echo "done $dir"
        done
    done
done
for w in 0.25 0.5 2 4 8; do
    dir="$out/sweep_half2_mlp_n1000_w$w"
    [ -f "$dir/summary_half2_mlp.csv" ] && continue
    "$demo" --hierarchy half2 --model mlp --train-size 1000 --seeds "$seeds" --methods stl,human+equal,human+cosine \
        --aux-weight "$w" --threads 2 --out "$dir" > "$dir.log" 2>&1 || { echo "study: $dir failed" >&2; exit 1; }
    echo "done $dir"
done
echo "# finished $(date -u +%Y-%m-%dT%H:%MZ)" >> "$out/README.txt"
