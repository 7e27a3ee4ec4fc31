# shellcheck shell=bash
# Make sure a PostgreSQL server is reachable for tests, benchmarks and soak runs.
#
# Source this file from a bash script, then call `coop_pg_ensure`:
#
#     source "$ROOT/scripts/lib/postgres.sh"
#     coop_pg_ensure || exit 1
#
# coop_pg_ensure checks COOP_LEDGER_TEST_DATABASE_URL (default
# postgresql://postgres@127.0.0.1:5432/postgres) with psycopg. If nothing
# answers and PostgreSQL server binaries are installed, it starts a throwaway
# cluster (trust auth, 127.0.0.1 only, data and socket in a temp dir, run as a
# non-root user), exports COOP_LEDGER_TEST_DATABASE_URL pointing at it, and
# stops and removes it when the calling script exits. If nothing answers and
# there are no binaries, it prints how to fix that and returns 1. PostgreSQL is
# never silently skipped.
#
# Settings (environment):
#   COOP_LEDGER_TEST_DATABASE_URL  server to use
#   COOP_PG_PYTHON       python with psycopg installed (default: <repo>/.venv/bin/python)
#   COOP_PG_BINDIR       directory holding initdb and pg_ctl (default: newest
#                        /usr/lib/postgresql/*/bin, else whatever is on PATH)
#   COOP_PG_OWNER        user owning a throwaway cluster when run as root
#                        (default: postgres if that user exists, else nobody)
#   COOP_PG_PORT         first port tried for a throwaway cluster (default 55432)
#   COOP_PG_SERVER_OPTS  extra postgres options for a throwaway cluster
#                        (default turns durability off; scripts/bench should set
#                        it to "" to measure realistic commit costs)
#   CI                   "true" makes a missing server a CI configuration error
#
# The helper installs an EXIT trap. A script that needs its own cleanup should
# register it with `coop_at_exit FUNCTION` instead of calling `trap ... EXIT`.

if [[ -n "${_COOP_PG_SH_LOADED:-}" ]]; then
    return 0
fi
_COOP_PG_SH_LOADED=1

COOP_PG_DEFAULT_URL="postgresql://postgres@127.0.0.1:5432/postgres"
_COOP_PG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_COOP_PG_TMPDIR=""
_COOP_PG_USER=""
_COOP_PG_BIN=""
_COOP_EXIT_HANDLERS=()

# ---------------------------------------------------------------- exit handling

coop_at_exit() {
    _COOP_EXIT_HANDLERS+=("$1")
    trap _coop_run_exit_handlers EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

_coop_run_exit_handlers() {
    local i
    for ((i = ${#_COOP_EXIT_HANDLERS[@]} - 1; i >= 0; i--)); do
        "${_COOP_EXIT_HANDLERS[i]}" || true
    done
    _COOP_EXIT_HANDLERS=()
}

# ---------------------------------------------------------------- helpers

_coop_pg_log() {
    printf 'postgres: %s\n' "$*" >&2
}

# Print a URL with any password replaced by ***.
coop_pg_redact_url() {
    printf '%s\n' "$1" | sed -E 's#^([a-z]+://[^:/@]*):[^@]*@#\1:***@#'
}

_coop_pg_python() {
    if [[ -n "${COOP_PG_PYTHON:-}" ]]; then
        printf '%s\n' "$COOP_PG_PYTHON"
    elif [[ -x "$_COOP_PG_ROOT/.venv/bin/python" ]]; then
        printf '%s\n' "$_COOP_PG_ROOT/.venv/bin/python"
    else
        printf '%s\n' python3
    fi
}

# coop_pg_check URL: 0 if a server answers, 1 if not (reason on stderr),
# 2 if psycopg itself is unavailable.
coop_pg_check() {
    local py
    py="$(_coop_pg_python)"
    "$py" - "$1" <<'PY'
import sys

try:
    import psycopg
except ImportError as exc:
    print(f"cannot import psycopg with {sys.executable}: {exc}", file=sys.stderr)
    sys.exit(2)
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as exc:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{type(exc).__name__}: {reason}", file=sys.stderr)
    sys.exit(1)
PY
}

# Directory holding initdb and pg_ctl, or nothing.
_coop_pg_find_bindir() {
    local dir
    if [[ -n "${COOP_PG_BINDIR:-}" ]]; then
        if [[ -x "$COOP_PG_BINDIR/initdb" && -x "$COOP_PG_BINDIR/pg_ctl" ]]; then
            printf '%s\n' "$COOP_PG_BINDIR"
        fi
        return 0
    fi
    dir="$(
        for d in /usr/lib/postgresql/*/bin; do
            [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && printf '%s\n' "$d"
        done | sort -V | tail -n 1
    )"
    if [[ -z "$dir" ]] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dir="$(dirname "$(command -v initdb)")"
    fi
    if [[ -n "$dir" ]]; then
        printf '%s\n' "$dir"
    fi
    return 0
}

# Run a command as the cluster owner (postgres refuses to run as root).
_coop_pg_as_owner() {
    if [[ "$(id -u)" != 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$_COOP_PG_USER" -- "$@"
    else
        su -s /bin/bash "$_COOP_PG_USER" -c "$(printf '%q ' "$@")"
    fi
}

_coop_pg_free_port() {
    local py
    py="$(_coop_pg_python)"
    "$py" - "${COOP_PG_PORT:-55432}" <<'PY'
import socket
import sys

start = int(sys.argv[1])
for port in range(start, start + 200):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    sys.exit(0)
sys.exit(f"no free TCP port in {start}..{start + 199}")
PY
}

coop_pg_stop_throwaway() {
    if [[ -z "$_COOP_PG_TMPDIR" ]]; then
        return 0
    fi
    if [[ -f "$_COOP_PG_TMPDIR/data/postmaster.pid" ]]; then
        _coop_pg_log "stopping throwaway cluster in $_COOP_PG_TMPDIR"
        (cd "$_COOP_PG_TMPDIR" &&
            _coop_pg_as_owner "$_COOP_PG_BIN/pg_ctl" -D "$_COOP_PG_TMPDIR/data" \
                -m immediate -w -t 30 stop >/dev/null 2>&1) ||
            _coop_pg_log "warning: pg_ctl stop failed (see $_COOP_PG_TMPDIR/server.log)"
    fi
    rm -rf -- "$_COOP_PG_TMPDIR"
    _COOP_PG_TMPDIR=""
}

# ---------------------------------------------------------------- throwaway cluster

coop_pg_start_throwaway() {
    local port opts url
    _COOP_PG_BIN="$(_coop_pg_find_bindir)"
    if [[ -z "$_COOP_PG_BIN" ]]; then
        _coop_pg_log "no PostgreSQL server binaries (initdb, pg_ctl) found"
        return 1
    fi

    if [[ "$(id -u)" == 0 ]]; then
        if [[ -n "${COOP_PG_OWNER:-}" ]]; then
            _COOP_PG_USER="$COOP_PG_OWNER"
        elif id -u postgres >/dev/null 2>&1; then
            _COOP_PG_USER=postgres
        else
            _COOP_PG_USER=nobody
        fi
    else
        _COOP_PG_USER="$(id -un)"
    fi

    # Short path under /tmp: unix socket paths are limited to ~107 bytes, and
    # the cluster owner must be able to reach it (TMPDIR may be under /root).
    _COOP_PG_TMPDIR="$(mktemp -d /tmp/coop-ledger-pg.XXXXXX)" || return 1
    coop_at_exit coop_pg_stop_throwaway
    if [[ "$(id -u)" == 0 ]]; then
        chown "$_COOP_PG_USER:" "$_COOP_PG_TMPDIR" || return 1
    fi

    port="$(_coop_pg_free_port)" || return 1
    _coop_pg_log "starting throwaway cluster ($_COOP_PG_BIN, user $_COOP_PG_USER," \
        "port $port, dir $_COOP_PG_TMPDIR)"

    # cd into the temp dir so the owner can always resolve its working directory.
    if ! (cd "$_COOP_PG_TMPDIR" &&
        _coop_pg_as_owner "$_COOP_PG_BIN/initdb" -D "$_COOP_PG_TMPDIR/data" \
            --username=postgres --auth=trust --encoding=UTF8 --no-locale --no-sync \
            >"$_COOP_PG_TMPDIR/initdb.log" 2>&1); then
        _coop_pg_log "initdb failed:"
        cat "$_COOP_PG_TMPDIR/initdb.log" >&2 || true
        return 1
    fi
    (cd "$_COOP_PG_TMPDIR" && _coop_pg_as_owner mkdir -p "$_COOP_PG_TMPDIR/socket") || return 1

    opts="-c listen_addresses=127.0.0.1 -p $port -k $_COOP_PG_TMPDIR/socket"
    opts+=" ${COOP_PG_SERVER_OPTS-"-c fsync=off -c synchronous_commit=off -c full_page_writes=off"}"
    if ! (cd "$_COOP_PG_TMPDIR" &&
        _coop_pg_as_owner "$_COOP_PG_BIN/pg_ctl" -D "$_COOP_PG_TMPDIR/data" \
            -l "$_COOP_PG_TMPDIR/server.log" -w -t 60 -o "$opts" start >/dev/null); then
        _coop_pg_log "pg_ctl start failed; server log:"
        cat "$_COOP_PG_TMPDIR/server.log" >&2 || true
        return 1
    fi

    url="postgresql://postgres@127.0.0.1:$port/postgres"
    if ! coop_pg_check "$url"; then
        _coop_pg_log "throwaway cluster started but does not accept connections; server log:"
        cat "$_COOP_PG_TMPDIR/server.log" >&2 || true
        return 1
    fi
    export COOP_LEDGER_TEST_DATABASE_URL="$url"
    _coop_pg_log "using throwaway cluster at $url (removed on exit)"
}

# ---------------------------------------------------------------- entry point

coop_pg_ensure() {
    local url rc=0 reason
    url="${COOP_LEDGER_TEST_DATABASE_URL:-$COOP_PG_DEFAULT_URL}"
    export COOP_LEDGER_TEST_DATABASE_URL="$url"

    reason="$(coop_pg_check "$url" 2>&1)" || rc=$?
    if [[ $rc == 0 ]]; then
        _coop_pg_log "server at $(coop_pg_redact_url "$url") is reachable"
        return 0
    fi
    if [[ $rc == 2 ]]; then
        _coop_pg_log "$reason"
        return 1
    fi
    _coop_pg_log "nothing answers at $(coop_pg_redact_url "$url"): $reason"

    if [[ -n "$(_coop_pg_find_bindir)" ]]; then
        coop_pg_start_throwaway
        return
    fi

    if [[ "${CI:-}" == true ]]; then
        cat >&2 <<EOF
ERROR (CI): PostgreSQL is required but not available.
  Nothing answers at $(coop_pg_redact_url "$url") and no PostgreSQL server
  binaries (initdb, pg_ctl) were found in /usr/lib/postgresql/*/bin or on PATH.
  Fix the CI image: install the PostgreSQL server package (e.g. apt-get install
  postgresql) or run a PostgreSQL service and set COOP_LEDGER_TEST_DATABASE_URL.
  PostgreSQL tests are never skipped.
EOF
    else
        cat >&2 <<EOF
ERROR: PostgreSQL is required but not available.
  Nothing answers at $(coop_pg_redact_url "$url") and no PostgreSQL server
  binaries (initdb, pg_ctl) were found to start a throwaway cluster.
  Either install the PostgreSQL server package (scripts/test then starts and
  removes a temporary cluster by itself), or point the tests at a server whose
  user may CREATE DATABASE, for example:
      COOP_LEDGER_TEST_DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/postgres scripts/test
  (e.g. docker run --rm -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16)
  PostgreSQL tests are never skipped.
EOF
    fi
    return 1
}
