#!/usr/bin/env bash
# Prepare this tree for the bare GPU machine (run on a machine with pip and network).
#
# The GPU machine has PyTorch, NumPy, pandas, xarray, scipy, h5py, scikit-learn and
# onnxruntime of its own but no network. What `python -m ecodistill gpu-run` imports beyond
# those (found with a venv holding only torch, numpy, pandas, xarray, scipy and h5py):
#   PyYAML         ecodistill.book, imported by the CLI at start-up
#   tqdm           the training loop's progress bar
#   threadpoolctl  BLAS pinned to one thread (pinned here although scikit-learn usually brings it)
# This script
#   1. downloads their wheels, at the versions pinned in requirements.txt, for CPython 3.12 on
#      manylinux_2_28_x86_64, into wheels/ (git-ignored; ~1 MB; replaced as a whole, so no
#      wheel of an old pin stays behind);
#   2. writes COMMIT (git-ignored): the commit the copied tree will record in every result row,
#      since the GPU machine gets no .git (see ecodistill.utils.git_commit).
# Carry both with the GPU command (scripts/gpu_command.sh), e.g. carry=["wheels", "COMMIT"].
#
# Usage, from anywhere:
#   bash scripts/fetch_gpu_wheels.sh                # wheels/ + COMMIT
#   bash scripts/fetch_gpu_wheels.sh --commit-only  # re-stamp COMMIT after a new commit (no network)
# Environment: PYVER (default 3.12), WHEELS (default wheels), PYTHON (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER="${PYVER:-3.12}"
WHEELS="${WHEELS:-wheels}"
PLATFORM="manylinux_2_28_x86_64"
PACKAGES=(PyYAML tqdm threadpoolctl)
MAX_KB=8192  # the whole tree sent to the GPU machine must stay <= 64 MiB

stamp_commit() {
  local top sha
  if top="$(git rev-parse --show-toplevel 2>/dev/null)" && [ "$(cd "$top" && pwd -P)" = "$(pwd -P)" ]; then
    sha="$(git rev-parse --short=12 HEAD)"
    # same rule as ecodistill.utils.git_commit: tracked changes under ecodistill/ make it dirty
    if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no -- ecodistill)" ]; then
      sha="$sha+dirty"
      echo "warning: ecodistill/ has uncommitted changes; rows will record $sha (commit first)" >&2
    fi
    echo "$sha" > COMMIT
    echo "COMMIT: $sha"
  else
    echo "warning: $(pwd -P) is not the top of its own git checkout; COMMIT left as is" >&2
  fi
}

if [ "${1:-}" = "--commit-only" ]; then
  stamp_commit
  exit 0
fi

PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
specs=()
for name in "${PACKAGES[@]}"; do
  pin="$(grep -i -m1 -E "^${name}==" requirements.txt || true)"
  if [ -z "$pin" ]; then
    echo "error: $name is not pinned in requirements.txt (add its exact version)" >&2
    exit 1
  fi
  specs+=("$pin")
done

tmp="$(mktemp -d)"
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$PYVER" --implementation cp --platform "$PLATFORM" --dest "$tmp" "${specs[@]}"
n="$(find "$tmp" -name '*.whl' | wc -l)"
if [ "$n" -ne "${#specs[@]}" ]; then
  echo "error: expected ${#specs[@]} wheels, got $n in $tmp" >&2
  exit 1
fi
kb="$(du -sk "$tmp" | cut -f1)"
if [ "$kb" -gt "$MAX_KB" ]; then
  echo "error: the wheels take ${kb} kB (> ${MAX_KB} kB); the tree sent to the GPU must stay small" >&2
  exit 1
fi
if [ -e "$WHEELS" ] && find "$WHEELS" -mindepth 1 ! -name '*.whl' | grep -q .; then
  echo "error: $WHEELS holds other files than wheels; refusing to replace it" >&2
  exit 1
fi
rm -rf "$WHEELS"
mkdir -p "$(dirname "$WHEELS")"
mv "$tmp" "$WHEELS"
trap - EXIT
echo "$WHEELS/ for CPython $PYVER ($PLATFORM), ${kb} kB:"
ls -l "$WHEELS" | tail -n +2 | awk '{printf "  %8d  %s\n", $5, $9}'
stamp_commit
