#!/bin/bash
# Crash-safe resume: for each composition with state, train uninterrupted once; then, several
# times, start the same training with a checkpoint after every step, SIGKILL it at a random
# moment, resume from the last checkpoint and require the final parameters to equal the
# uninterrupted run's byte for byte.   Usage: kill_resume.sh PROGRAM WORKDIR [TRIALS]
set -eu
program=$1
work=$2
trials=${3:-3}
methods="stl human+cosine human+module_aware human+transference maxl+equal rl_aux_w+equal dtg"
rm -rf "$work"
mkdir -p "$work"
passed=0
for method in $methods; do
    dir="$work/${method//+/_}"
    mkdir -p "$dir"
    "$program" --method "$method" --dir "$dir" --mode straight > /dev/null
    for trial in $(seq 1 "$trials"); do
        rm -f "$dir"/run.ckpt* "$dir/resumed.params"
        "$program" --method "$method" --dir "$dir" --mode run --sleep-ms 50 &
        pid=$!
        # A kill point between 0.2 s and 2 s into the run (45 steps of at least 50 ms: about 2.3 s).
        sleep "0.$((RANDOM % 9 + 2))$((RANDOM % 10))"
        sleep "$((RANDOM % 2))"
        kill -KILL "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
        had=$([ -f "$dir/run.ckpt" ] && echo "from a checkpoint" || echo "from scratch (killed before the first one)")
        at=$("$program" --method "$method" --dir "$dir" --mode resume | grep "resumed at")
        if ! cmp -s "$dir/straight.params" "$dir/resumed.params"; then
            echo "kill_resume: $method trial $trial: $at ($had): final parameters differ from the uninterrupted run" >&2
            exit 1
        fi
        echo "kill_resume: $method trial $trial: killed, $at ($had), parameters identical"
        passed=$((passed + 1))
    done
done
echo "kill_resume: $passed kill/resume trials passed"
