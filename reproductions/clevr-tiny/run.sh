#!/usr/bin/env bash
# Reproduce this folder's result and verify it: ./run.sh [--dry-run] [Hydra overrides...]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$here/../run-reproduction.sh" "$(basename "$here")" "$@"
