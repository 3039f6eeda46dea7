#!/usr/bin/env bash
# Regenerate wire/gen from proto/placement/v1/placement.proto.
#
# The virtual path mapping (-Iwire/gen/placement/v1=proto/placement/v1) makes the
# generated modules import each other as `wire.gen.placement.v1`, so they never
# clash with our `placement` library package. tests/test_proto_drift.py runs the same
# command into a temporary folder and checks that the committed files are up to date.
#
# Usage: scripts/gen_proto.sh [OUT_DIR]   (OUT_DIR defaults to the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-.}
mkdir -p "$OUT/wire/gen/placement/v1"
"$PY" -m grpc_tools.protoc \
  -Iwire/gen/placement/v1=proto/placement/v1 \
  --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  wire/gen/placement/v1/placement.proto
for d in wire/gen wire/gen/placement wire/gen/placement/v1; do
  [ -f "$OUT/$d/__init__.py" ] || : > "$OUT/$d/__init__.py"
done
