#!/bin/sh
# The long fuzzing run: a million inputs (or the count given) in the background, under
# nice, with the kernel selftest objects as extra seeds. Progress every 5 minutes in
# $OUT/log; figures and defects (with saved reproducers) in $OUT/report.json.
#
#   tools/fuzz/run_long.sh [INPUTS]        env: WORKERS (2), SEED (1), FIRST (0), OUT, PYTHON
#
# An interrupted run continues with FIRST set to the last input count reported.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
INPUTS=${1:-1000000}
OUT=${OUT:-${XDG_CACHE_HOME:-$HOME/.cache}/pylibbpf-fuzz/long-$(date +%Y%m%d-%H%M%S)}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
mkdir -p "$OUT"
cd "$ROOT"
PYTHONPATH=$ROOT nohup nice -n 15 "$PYTHON" -m tools.fuzz --inputs "$INPUTS" --selftests \
    --workers "${WORKERS:-2}" --seed "${SEED:-1}" --first "${FIRST:-0}" --progress 300 \
    --out "$OUT" >"$OUT/log" 2>&1 &
echo "long fuzz run: pid $!; log $OUT/log; report $OUT/report.json"
