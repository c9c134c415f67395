#!/bin/sh
# Data-parallel throughput on this machine: for each method, 1 process x 1 BLAS thread,
# 2 processes x 1 BLAS thread, and 1 process x 2 BLAS threads, interleaved, REPEATS times.
# Prints CSV lines (method,processes,threads,batch_per_process,steps,seconds,examples_per_s).
# Caveat printed with the figures: both ranks share one machine (2 cores here), so 2 ranks
# compete with each other for memory bandwidth; on a cluster each rank has its own node.
#   benchmarks/mpi_throughput.sh build/benchmarks/bench_mpi [repeats] [batch per process] [steps]
set -eu
bin=${1:?usage: mpi_throughput.sh path/to/bench_mpi [repeats] [batch] [steps]}
repeats=${2:-3}
batch=${3:-128}
steps=${4:-100}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; both ranks share this machine"
echo "method,processes,threads,batch_per_process,steps,seconds,examples_per_s"
for method in stl human+equal human+cosine maxl+equal; do
    i=0
    while [ "$i" -lt "$repeats" ]; do
        OPENBLAS_NUM_THREADS=1 mpirun -np 1 "$bin" "$method" "$batch" "$steps"
        OPENBLAS_NUM_THREADS=1 mpirun -np 2 --oversubscribe "$bin" "$method" "$batch" "$steps"
        OPENBLAS_NUM_THREADS=2 mpirun -np 1 --bind-to none "$bin" "$method" "$batch" "$steps"
        i=$((i + 1))
    done
done
