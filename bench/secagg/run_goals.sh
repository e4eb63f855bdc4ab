#!/usr/bin/env bash
# Runs the issue-4 and issue-10 goal configurations of secagg_bench (Release build) and
# prints one JSON line per run. usage: bench/secagg/run_goals.sh BUILD_DIR [REPEATS]
set -euo pipefail
bin=${1:?build dir}/bench/secagg/secagg_bench
reps=${2:-1}
run() { for _ in $(seq "$reps"); do "$bin" "$@" --json; done; }
run --n 100 --d 1000000 --drop 0.1 --when before --client-threads 2        # goal: chosen k 80, t 54, 2 threads
run --n 100 --d 1000000 --drop 0.1 --when before                           # same, one client thread
run --n 100 --d 1000000 --drop 0.1 --when before --k 12                     # Flower's k (t 9)
run --n 100 --d 1000000 --drop 0.1 --when before --k 12 --client-threads 2  # client on 2 cores
run --n 100 --d 1000000 --drop 0 --when before --k 12                       # Flower: 4.3 s
run --n 10 --d 1000000 --drop 0 --when before --k 6                         # Flower: 118 ms/org
run --n 100 --d 1000000 --drop 0.1 --when before --k 12 --bits 20           # upload <= 2.5 B/value
run --n 100 --d 100000 --drop 0.1 --when before --k 99                      # complete graph
run --n 100 --d 1000000 --drop 0.1 --when after --k 12
