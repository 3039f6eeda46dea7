#!/usr/bin/env bash
# Regenerate server/gen from proto/placement/v1/placement.proto.
#
# The virtual path mapping (-Iserver/gen/placement/v1=proto/placement/v1) makes the
# generated modules import each other as `server.gen.placement.v1`, so they never
# clash with our `placement` library package. tests/test_proto_drift.py runs the same
# command into a temporary folder and checks that the committed files are up to date.
#
# Usage: scripts/gen_proto.sh [OUT_DIR]   (OUT_DIR defaults to the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-.}
mkdir -p "$OUT/server/gen/placement/v1"
"$PY" -m grpc_tools.protoc \
  -Iserver/gen/placement/v1=proto/placement/v1 \
  --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  server/gen/placement/v1/placement.proto
for d in server/gen server/gen/placement server/gen/placement/v1; do
  [ -f "$OUT/$d/__init__.py" ] || : > "$OUT/$d/__init__.py"
done
