#!/usr/bin/env bash
# Scorer benchmark on a lent GPU machine: Keras 3 on torch (or jax), no TensorFlow there.
#
#   benchmarks/gpu_check.sh [REGISTRY]        (default .ecgwatch/models)
#
# Needs, carried from the dev machine: the model registry (REGISTRY, with `latest`) and, if
# Keras 3 is not installed there, the wheels in .whl/gpu/ (keras + its pure-Python deps and
# optree/h5py/ml-dtypes for CPython 3.10-3.13; fetched with `pip download`, see
# docs/performance.md). Installs nothing outside a throwaway venv. Writes
# $OUT/gpu_check_<backend>.json when $OUT is set; exit 0 if any backend passed.
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${1:-.ecgwatch/models}
PY=${PYTHON:-python3}

# Every available backend unless KERAS_BACKEND picks one (jax first: its path was also
# tested on CPU on the dev machine; the torch path could only be reviewed there).
if [ -n "${KERAS_BACKEND:-}" ]; then BACKENDS=("$KERAS_BACKEND"); else
  BACKENDS=()
  for b in jax torch; do "$PY" -c "import $b" 2>/dev/null && BACKENDS+=("$b"); done
fi
if [ ${#BACKENDS[@]} -eq 0 ]; then
  echo "gpu_check: neither torch nor jax is importable with $PY" >&2; exit 2
fi

# KERAS_BACKEND must be set for the check: a bare `import keras` tries TensorFlow.
if ! KERAS_BACKEND=${BACKENDS[0]} "$PY" -c "import keras, sys; sys.exit(int(keras.__version__.split('.')[0]) < 3)" 2>/dev/null; then
  # Install Keras and its missing pure deps next to the system's torch/jax/numpy. A venv made
  # from the image's own venv would not see those, so use a --target folder on PYTHONPATH.
  SITE=$(mktemp -d)/site
  TAG=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" \
    .whl/gpu/keras-*.whl .whl/gpu/namex-*.whl .whl/gpu/optree-*-"$TAG"-*.whl
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
fi

"$PY" -c "import sys; print('python', sys.version.split()[0])"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
status=1
for backend in "${BACKENDS[@]}"; do
  echo "== KERAS_BACKEND=$backend"
  ARGS=(--registry "$REGISTRY")
  if [ -n "${OUT:-}" ]; then ARGS+=(--out "$OUT/gpu_check_$backend.json"); fi
  if KERAS_BACKEND=$backend "$PY" -m benchmarks.gpu_scorer "${ARGS[@]}"; then status=0; fi
done
exit $status
