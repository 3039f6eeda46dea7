#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.11 and pip, nothing else):
#   bash run.sh demo   start the service, place the bundled mixed fleet, show placements and power budgets
#   bash run.sh test   lint, type-check and run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
PY="$VENV/bin/python"
case "${1:-demo}" in
  demo)
    shift || true
    exec "$VENV/bin/fleetplace" demo "$@"
    ;;
  test)
    shift || true
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy" placement wire server fleetplace importers benchmarks
    exec "$PY" -m pytest "$@"
    ;;
  *)
    echo "usage: bash run.sh [demo|test] [args...]" >&2
    exit 2
    ;;
esac
