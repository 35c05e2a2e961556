#!/usr/bin/env bash
# TinyZero-TRL container entrypoint; also runs on the host: `bash docker/entrypoint.sh list`.
#
#   IMAGE reproduce countdown-3b          -> tinyzero-trl reproduce countdown-3b
#   IMAGE --help                          -> tinyzero-trl --help
#   IMAGE bash | python ... | accelerate  -> run as a plain command
#
# tinyzero-trl comes from PATH, else `$TINYZERO_PYTHON -m tinyzero_trl.cli` (python3, then python).
# Output locations are the CLI's business: the images export TINYZERO_RUNS=/runs, the host keeps its own.
set -euo pipefail

readonly SUBCOMMANDS=(reproduce verify evaluate train list tiny-model)

is_subcommand() {
    local candidate=$1 name
    for name in "${SUBCOMMANDS[@]}"; do
        [[ $candidate == "$name" ]] && return 0
    done
    return 1
}

# Resolve how to call the CLI into the array CLI.
resolve_cli() {
    if command -v tinyzero-trl >/dev/null 2>&1; then
        CLI=(tinyzero-trl)
        return 0
    fi
    local py
    for py in "${TINYZERO_PYTHON:-}" python3 python; do
        if [[ -n $py ]] && command -v "$py" >/dev/null 2>&1; then
            CLI=("$py" -m tinyzero_trl.cli)
            return 0
        fi
    done
    echo "entrypoint: neither tinyzero-trl nor python found on PATH" >&2
    exit 127
}

# An arbitrary --user (e.g. --user "$(id -u):$(id -g)") may have no writable home; caches need one.
if [[ -z ${HOME:-} || ! -w ${HOME:-/nonexistent} ]]; then
    export HOME=/tmp
fi

if [[ $# -eq 0 ]]; then
    set -- --help
fi

if is_subcommand "$1" || [[ $1 == -* ]]; then
    # A bind-mounted runs folder owned by another uid fails late (after the model download); say so now.
    runs=${TINYZERO_RUNS:-}
    if [[ -n $runs && -d $runs && ! -w $runs ]]; then
        echo "entrypoint: warning: $runs is not writable by uid $(id -u);" \
            "run with --user \"\$(id -u):\$(id -g)\" or make the mounted folder writable" >&2
    fi
    resolve_cli
    exec "${CLI[@]}" "$@"
fi

exec "$@"
