#!/usr/bin/env bash
# `make demo` as a new user runs it: a fresh clone (with ../shared beside it), set-up included, timed by
# /usr/bin/time -v; then bench_demo.py reads that very run (nothing rerun, nothing reused) into
# benchmarks/results/demo.json of this checkout.
#   bash benchmarks/fresh_clone_demo.sh [CLONE_DIR]     # default: ../zerosearch-fresh-demo (must not exist)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
clone=${1:-$here/../zerosearch-fresh-demo}
[ -e "$clone" ] && { echo "$clone exists: give an empty path (a fresh clone is the point)" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 2; }
git clone --quiet "$here" "$clone"
cd "$clone"
/usr/bin/time -v make demo 2> make-demo.time | tee make-demo.log
.venv/bin/python benchmarks/bench_demo.py --finished runs/demo --time-file make-demo.time \
    --result benchmarks/results/demo.json
cp benchmarks/results/demo.json "$here/benchmarks/results/demo.json"
