#!/usr/bin/env bash
# Shared body of every reproductions/NAME/run.sh: train + evaluate, then verify against expected.json.
# Works the same inside the Docker image and on a host where the package is installed.
#   usage: run-reproduction.sh NAME [reproduce options and Hydra overrides...]
set -euo pipefail
name="$1"; shift
out="${TINYZERO_RUNS:-runs}/${name}"
if command -v tinyzero-trl >/dev/null 2>&1; then cli=(tinyzero-trl); else cli=(python -m tinyzero_trl.cli); fi
"${cli[@]}" reproduce "$name" --output-dir "$out" "$@"
for arg in "$@"; do [ "$arg" = "--dry-run" ] && exit 0; done
"${cli[@]}" verify "$name" --run-dir "$out"
