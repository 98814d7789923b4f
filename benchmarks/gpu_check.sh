#!/usr/bin/env bash
# The GPU kit (issue 17): on a bare GPU machine with Python 3.12, PyTorch, CuPy and NumPy/SciPy but
# none of dask, distributed, dask-cuda, zarr, numcodecs or curvlinops, install the carried wheels,
# run `pytest -m gpu` and the stages of benchmarks/gpu_check.py, and write one JSON report and a log.
#
#     benchmarks/gpu_wheels.sh                 # once, on a machine with PyPI: fills .whl/ (git-ignored, ~13 MB)
#     benchmarks/gpu_check.sh [OUT]            # on the GPU machine, from the checkout (with .whl/ beside it)
#
# OUT (default $OUT, else benchmarks/out/gpu_check) receives gpu_check.json (everything), gpu_check.log,
# pytest_gpu.xml and one JSON per stage. Each stage is its own process under a time limit, so one
# that fails or hangs costs only its own figures. The whole kit is sized to finish within 8 minutes
# on one H200. Options for a dry run on a CPU: PYTHON=/path/to/python3.12 GPU_CHECK_ARGS="--cpu --quick".
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-benchmarks/out/gpu_check}}"
PY="${PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/sketchla-site}"
ARGS=(${GPU_CHECK_ARGS:-})
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
t_start=$(date +%s)
echo "== gpu_check $(date -u +%FT%TZ) on $(hostname); python: $("$PY" -c 'import sys; print(sys.version.split()[0])')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

ls .whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .whl/: run benchmarks/gpu_wheels.sh first"; exit 2; }
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 2; }
export PYTHONPATH="$PWD:$PWD/benchmarks:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-/tmp/cupy-cache}"
"$PY" - <<'PYEOF' || { echo "the kit's packages do not import"; exit 2; }
import importlib
for m in ("dask", "distributed", "zarr", "numcodecs", "curvlinops", "torch", "sketchla", "overlap_experiments"):
    mod = importlib.import_module(m)
    print(f"  {m} {getattr(mod, '__version__', '')}")
try:
    import cupy, dask_cuda
    print(f"  cupy {cupy.__version__}, dask_cuda {dask_cuda.__version__}")
except Exception as exc:  # a CPU dry run has no CUDA device
    print(f"  no CUDA stack: {type(exc).__name__}: {exc}")
PYEOF

stage() {  # stage NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo "== [$name] (limit ${limit}s)"
  timeout -k 10 "$limit" "$@"
  local rc=$?
  echo "== [$name] rc=$rc in $(( $(date +%s) - t0 ))s"
}
RUN_STAGES="${STAGES:-peaks pytest hvp qr seigh}"  # STAGES="pytest seigh" reruns a subset; "variants" is extra
for st in $RUN_STAGES; do
  case $st in
    peaks)    stage peaks    "${LIMIT_PEAKS:-30}"    "$PY" benchmarks/gpu_check.py peaks --out "$OUT" "${ARGS[@]}" ;;
    pytest)   stage pytest   "${LIMIT_PYTEST:-130}"  "$PY" -m pytest -m gpu -q -p no:cacheprovider -rfE \
                  --junitxml="$OUT/pytest_gpu.xml" ${PYTEST_TARGETS:-tests} ;;
    hvp)      stage hvp      "${LIMIT_HVP:-110}"     "$PY" benchmarks/gpu_check.py hvp --out "$OUT" "${ARGS[@]}" ;;
    variants) stage variants "${LIMIT_VARIANTS:-120}" "$PY" benchmarks/gpu_check.py variants --out "$OUT" "${ARGS[@]}" ;;
    qr)       stage qr       "${LIMIT_QR:-90}"       "$PY" benchmarks/gpu_check.py qr --out "$OUT" "${ARGS[@]}" ;;
    seigh)    stage seigh    "${LIMIT_SEIGH:-240}"   "$PY" benchmarks/gpu_check.py seigh --out "$OUT" "${ARGS[@]}" ;;
    *) echo "unknown stage $st (peaks pytest hvp variants qr seigh)"; exit 2 ;;
  esac
done
"$PY" benchmarks/gpu_check.py report --out "$OUT" "${ARGS[@]}"
echo "== gpu_check done in $(( $(date +%s) - t_start ))s; report: $OUT/gpu_check.json"
