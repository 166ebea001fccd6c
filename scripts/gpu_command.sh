#!/usr/bin/env bash
# The one command for the bare GPU machine (PyTorch, NumPy, pandas, xarray of its own; no
# network): install the carried wheels, then run everything GPU-bound and pack the results.
#
# Before (on a machine with pip and git): bash scripts/fetch_gpu_wheels.sh  -> wheels/, COMMIT
# Send the tree with the ignored paths wheels/ and COMMIT (e.g. carry=["wheels", "COMMIT"]),
# and run, from the project root, with $OUT the folder whose files come back:
#   bash scripts/gpu_command.sh
# which is this command line (≤ 2,000 characters, if you would rather type it):
#   python -m pip install -q --no-index --no-deps --target .gpu_site wheels/*.whl && PYTHONPATH="$PWD/.gpu_site:$PWD" python -m ecodistill gpu-run --budget-s 540 --out "$OUT"
# After (on your machine), with the returned files in DIR:
#   python -m ecodistill unpack DIR     # checks every part, restores results/full/
#
# Extra arguments go to gpu-run (e.g. --profile smoke --device cpu to try it on a CPU).
# Environment: PYTHON (default python), WHEELS (default wheels), SITE (default .gpu_site),
# BUDGET_S (default 540).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
PY="${PYTHON:-python}"
WHEELS="${WHEELS:-wheels}"
SITE="${SITE:-.gpu_site}"

shopt -s nullglob
wheels=("$WHEELS"/*.whl)
if [ "${#wheels[@]}" -eq 0 ]; then
  echo "warning: no wheels in $WHEELS/ (run scripts/fetch_gpu_wheels.sh and carry wheels/)" >&2
elif ! "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --upgrade \
    --target "$SITE" "${wheels[@]}"; then
  # no pip there: a wheel is a zip of its files, so unpacking it is enough for these packages
  echo "warning: pip install failed; unpacking the wheels into $SITE" >&2
  "$PY" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
    "$SITE" "${wheels[@]}"
fi
SITE="$(mkdir -p "$SITE" && cd "$SITE" && pwd)"
[ -f COMMIT ] || echo "warning: no COMMIT file; rows will record commit 'unknown'" >&2
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m ecodistill gpu-run --budget-s "${BUDGET_S:-540}" --out "$OUT" "$@"
