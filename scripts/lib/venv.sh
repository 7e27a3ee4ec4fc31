# Shared by scripts/test, scripts/serve, scripts/bench and scripts/soak: create or reuse
# .venv and install the project, skipping the install when pyproject.toml is unchanged.

VENV="${VENV:-$ROOT/.venv}"

find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    echo "error: need python3.11 (or a python3 that is 3.11+) to create .venv" >&2
    return 1
}

pyproject_hash() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum pyproject.toml | cut -d' ' -f1
    else
        "$VENV/bin/python" -c \
            'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' \
            pyproject.toml
    fi
}

# setup_venv [EXTRA]: install the project (with EXTRA, e.g. "test") into .venv.
setup_venv() {
    local extra="${1:-}" python hash spec="."
    local stamp="$VENV/.coop-ledger-install${extra:+-$extra}.sha256"
    [[ -n "$extra" ]] && spec=".[$extra]"
    if [[ ! -x "$VENV/bin/python" ]]; then
        python="$(find_python)" || return 1
        echo "creating .venv with $python ($("$python" -V 2>&1))"
        "$python" -m venv "$VENV" || return 1
        rm -f "$VENV"/.coop-ledger-install*.sha256
    fi
    hash="$(pyproject_hash)" || return 1
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
        echo "dependencies up to date (pyproject.toml unchanged)"
        return 0
    fi
    echo "installing -e '$spec'"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        "$VENV/bin/python" -m pip install --quiet -e "$spec" || return 1
    printf '%s\n' "$hash" >"$stamp"
}

