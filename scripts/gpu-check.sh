#!/usr/bin/env bash
# The real-GPU check (issue 14): on a machine with an NVIDIA GPU, after `make dev`,
# run the GPU tests and the GPU benchmark and print what they measured.
# Usage: scripts/gpu-check.sh [--quick]   (--quick: 50 busy runs instead of 200)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=200
[ "${1:-}" = "--quick" ] && RUNS=50

echo "== device"
nvidia-smi --query-gpu=index,name,memory.total,memory.free,driver_version --format=csv \
  || echo "nvidia-smi not found"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
          "available", torch.cuda.is_available(), "devices", torch.cuda.device_count())'

services=1
"$PY" - <<'PY' || services=0
import socket
for port in (6379, 5432):
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
PY

echo "== GPU tests"
if [ "$services" = 1 ]; then
  "$PY" -m pytest tests/gpu -q -p no:cacheprovider
else
  echo "(Redis/PostgreSQL not reachable on 127.0.0.1: tests that need them are skipped)"
  "$PY" -m pytest tests/gpu -q -p no:cacheprovider -m "not services"
fi
tests=$?

echo "== GPU benchmark"
if [ "$services" = 1 ]; then
  "$PY" benchmarks/bench_gpu.py --runs "$RUNS"
  bench=$?
else
  echo "skipped: bench_gpu.py needs Redis and PostgreSQL (scripts/ensure-services.sh)"
  bench=1
fi
echo "== done: tests exit $tests, benchmark exit $bench"
exit $(( tests || bench ))
