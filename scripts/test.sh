#!/usr/bin/env bash
# Run the pytest suite twice: on SQLite and on PostgreSQL, at the same time.
#
#   scripts/test.sh [PYTEST ARGS...]
#
# Uses the active interpreter: $PYTHON if set, else `python` on PATH (inside
# tox, the tox env's; via `make test`, .venv's).
#
# PostgreSQL run:
#   TXMAIL_PG_EXTERNAL=1   use the server the PG* variables (PGHOST, PGPORT,
#                          PGUSER, PGPASSWORD, PGDATABASE) point at;
#   otherwise              scripts/postgres.sh starts a throwaway cluster.
#   TXMAIL_SKIP_POSTGRES=1 skip the PostgreSQL run on purpose;
#   TXMAIL_SKIP_SQLITE=1   skip the SQLite run (CI's Django 6.1 leg);
#   TXMAIL_TEST_SERIAL=1   run SQLite, then PostgreSQL, instead of both at once.
# With no PostgreSQL server installed the run is skipped with a notice, unless
# CI is set, where that is a failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    PYTHON="$(command -v python || command -v python3 || true)"
fi
if [[ -z "$PYTHON" ]]; then
    echo "scripts/test.sh: no python found; run 'make test' or activate a virtualenv" >&2
    exit 2
fi
if ! "$PYTHON" -c 'import django, pytest, pytest_django, txmail_sandbox' 2>/dev/null; then
    echo "scripts/test.sh: $PYTHON lacks Django/pytest/pytest-django/txmail_sandbox." >&2
    echo "Run 'make test' (creates .venv) or: pip install -e ./sandbox -e '.[test]'" >&2
    exit 2
fi

banner() { printf '\n==================== %s ====================\n' "$*"; }
is_true() { [[ -n "${1:-}" && "$1" != "0" && "$1" != "false" && "$1" != "no" ]]; }

"$PYTHON" -c 'import sys, django; print(f"Python {sys.version.split()[0]} ({sys.executable}), Django {django.get_version()}")'

# --- SQLite ---------------------------------------------------------------
sqlite_leg() {
    sqlite_rc=0
    sqlite_state=""
    if is_true "${TXMAIL_SKIP_SQLITE:-}"; then
        sqlite_state="skipped (TXMAIL_SKIP_SQLITE is set)"
    else
        env -u TXMAIL_TEST_DB "$PYTHON" -m pytest "$@"
        sqlite_rc=$?
    fi
}

# --- PostgreSQL -----------------------------------------------------------
postgres_leg() {
    pg_rc=0
    pg_state=""
    if is_true "${TXMAIL_SKIP_POSTGRES:-}"; then
        pg_state="skipped (TXMAIL_SKIP_POSTGRES is set)"
    elif is_true "${TXMAIL_PG_EXTERNAL:-}"; then
        echo "Using the external server at ${PGHOST:-127.0.0.1}:${PGPORT:-5432} (database ${PGDATABASE:-txmail})"
        TXMAIL_TEST_DB=postgres "$PYTHON" -m pytest "$@"
        pg_rc=$?
    elif ! bash scripts/postgres.sh bindir >/dev/null 2>&1; then
        if [[ -n "${CI:-}" ]]; then
            echo "ERROR: no PostgreSQL server binaries (initdb/pg_ctl) found, and CI is set." >&2
            echo "Install them with: apt-get install postgresql" >&2
            pg_rc=1
            pg_state="FAILED (PostgreSQL is not installed)"
        else
            echo "NOTICE: PostgreSQL run SKIPPED: no PostgreSQL server binaries (initdb/pg_ctl) found."
            echo "        Install them (Debian/Ubuntu: sudo apt-get install postgresql) to run it,"
            echo "        or point PG* at a server and set TXMAIL_PG_EXTERNAL=1."
            pg_state="SKIPPED (PostgreSQL is not installed)"
        fi
    else
        TXMAIL_TEST_DB=postgres bash scripts/postgres.sh run -- "$PYTHON" -m pytest "$@"
        pg_rc=$?
    fi
}

# Both databases at once when both run: each session has its own scratch directory,
# database, ports and servers, and the suite passes on a busy machine. The PostgreSQL
# leg's output is kept and shown after the SQLite leg's. TXMAIL_TEST_SERIAL=1, or a
# TXMAIL_TEST_TMP both sessions would share: one after the other.
if is_true "${TXMAIL_SKIP_SQLITE:-}" || is_true "${TXMAIL_SKIP_POSTGRES:-}" \
    || is_true "${TXMAIL_TEST_SERIAL:-}" || [[ -n "${TXMAIL_TEST_TMP:-}" ]]; then
    banner "pytest on SQLite"
    start=$SECONDS
    sqlite_leg "$@"
    sqlite_secs=$((SECONDS - start))
    banner "pytest on PostgreSQL"
    start=$SECONDS
    postgres_leg "$@"
    pg_secs=$((SECONDS - start))
else
    kept="$(mktemp -d)"
    trap 'rm -rf "$kept"' EXIT
    start=$SECONDS
    (
        postgres_leg "$@"
        printf '%s\n%s\n%s\n' "$pg_rc" "$((SECONDS - start))" "$pg_state" >"$kept/status"
    ) >"$kept/output" 2>&1 &
    pg_pid=$!
    banner "pytest on SQLite (PostgreSQL runs alongside; its output follows)"
    sqlite_leg "$@"
    sqlite_secs=$((SECONDS - start))
    wait "$pg_pid"
    banner "pytest on PostgreSQL (ran alongside SQLite)"
    cat "$kept/output"
    { read -r pg_rc; read -r pg_secs; read -r pg_state; } <"$kept/status" \
        || { pg_rc=1; pg_secs=$((SECONDS - start)); pg_state="FAILED (no status)"; }
fi

# --- Summary --------------------------------------------------------------
result() { if [[ "$1" -eq 0 ]]; then echo "passed"; else echo "FAILED (exit $1)"; fi; }
banner "summary"
printf '  SQLite:     %s  [%ss]\n' "${sqlite_state:-$(result "$sqlite_rc")}" "$sqlite_secs"
printf '  PostgreSQL: %s  [%ss]\n' "${pg_state:-$(result "$pg_rc")}" "$pg_secs"

if [[ "$sqlite_rc" -ne 0 ]]; then
    exit "$sqlite_rc"
fi
exit "$pg_rc"
