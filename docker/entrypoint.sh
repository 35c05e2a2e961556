#!/usr/bin/env bash
# TinyZero-TRL container entrypoint; also runs on the host: `bash docker/entrypoint.sh list`.
#
#   IMAGE reproduce countdown-3b          -> tinyzero-trl reproduce countdown-3b
#   IMAGE --help                          -> tinyzero-trl --help
#   IMAGE bash | python ... | accelerate  -> run as a plain command
#
# tinyzero-trl comes from PATH, else `$TINYZERO_PYTHON -m tinyzero_trl.cli` (python3, then python).
# Which words are subcommands is the CLI's own answer (`tinyzero-trl --commands`: one name a line, no ML
# imports), so a subcommand added to the CLI needs no edit here.
# Output locations are the CLI's business: the images export TINYZERO_RUNS=/runs, the host keeps its own.
set -euo pipefail

# Resolve how to call the CLI into the array CLI; return 1 when there is none.
resolve_cli() {
    if command -v tinyzero-trl >/dev/null 2>&1; then
        CLI=(tinyzero-trl)
        return 0
    fi
    local py
    for py in "${TINYZERO_PYTHON:-}" python3 python; do
        if [[ -n $py ]] && command -v "$py" >/dev/null 2>&1 && "$py" -c "import tinyzero_trl" 2>/dev/null; then
            CLI=("$py" -m tinyzero_trl.cli)
            return 0
        fi
    done
    return 1
}

is_subcommand() {
    local candidate=$1 names name
    if ! names=$("${CLI[@]}" --commands); then
        echo "entrypoint: warning: \`${CLI[*]} --commands\` failed; running '$candidate' as a plain command" >&2
        return 1
    fi
    while IFS= read -r name; do
        [[ $candidate == "$name" ]] && return 0
    done <<<"$names"
    return 1
}

# An arbitrary --user (e.g. --user "$(id -u):$(id -g)") may have no writable home; caches need one.
if [[ -z ${HOME:-} || ! -w ${HOME:-/nonexistent} ]]; then
    export HOME=/tmp
fi

if [[ $# -eq 0 ]]; then
    set -- --help
fi

CLI=()
if [[ $1 == -* ]] || { resolve_cli && is_subcommand "$1"; }; then
    if [[ ${#CLI[@]} -eq 0 ]] && ! resolve_cli; then
        echo "entrypoint: neither tinyzero-trl nor a python with tinyzero_trl found on PATH" >&2
        exit 127
    fi
    # A bind-mounted runs folder owned by another uid fails late (after the model download); say so now.
    runs=${TINYZERO_RUNS:-}
    if [[ -n $runs && -d $runs && ! -w $runs ]]; then
        echo "entrypoint: warning: $runs is not writable by uid $(id -u);" \
            "run with --user \"\$(id -u):\$(id -g)\" or make the mounted folder writable" >&2
    fi
    exec "${CLI[@]}" "$@"
fi

exec "$@"
