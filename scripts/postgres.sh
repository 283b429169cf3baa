#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for the test suite.
#
#   scripts/postgres.sh run [--] CMD [ARGS...]
#       initdb a fresh cluster under .tmp/pg/, start it on a free port on
#       127.0.0.1 (trust auth, superuser "postgres", database "txmail"),
#       export PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE, run CMD, then stop
#       the server and delete the cluster. Exits with CMD's status.
#       TXMAIL_PG_DURABLE=1 keeps PostgreSQL's durable defaults (fsync and
#       synchronous_commit on), as a benchmark should; tests turn them off.
#   scripts/postgres.sh bindir
#       print the directory holding initdb/pg_ctl; exit 3 if none is installed.
#
# Server binaries: $TXMAIL_PG_BINDIR, else the newest /usr/lib/postgresql/<ver>/bin
# (Debian/Ubuntu), else /usr/pgsql-<ver>/bin, else initdb on PATH.
# PostgreSQL refuses to run as root: as root, the cluster is owned by and the
# server runs as the "postgres" system user (created as "txmail-pg" when the
# postgres user does not exist), via runuser.
set -euo pipefail

# runuser/useradd live in sbin, which a non-login PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_DBNAME="${TXMAIL_PG_DBNAME:-txmail}"
PG_SUPERUSER="postgres"

log() { printf '[postgres] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

find_bindir() {
    local d
    if [[ -n "${TXMAIL_PG_BINDIR:-}" ]]; then
        [[ -x "$TXMAIL_PG_BINDIR/initdb" && -x "$TXMAIL_PG_BINDIR/pg_ctl" ]] || return 1
        printf '%s\n' "$TXMAIL_PG_BINDIR"
        return 0
    fi
    for d in $( (ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r)
                (ls -d /usr/pgsql-*/bin 2>/dev/null | sort -V -r) ); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    d="$(command -v initdb 2>/dev/null || true)"
    if [[ -n "$d" && -x "$(dirname "$d")/pg_ctl" ]]; then
        dirname "$d"
        return 0
    fi
    return 1
}

free_port() {
    local py
    py="$(command -v python3 || command -v python)" || die "python is needed to pick a free port"
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Server-side commands (initdb, pg_ctl) run as RUN_USER when we are root.
RUN_USER=""
as_owner() {
    if [[ -n "$RUN_USER" ]]; then
        runuser -u "$RUN_USER" -- "$@"
    else
        "$@"
    fi
}

pick_run_user() {
    [[ "$(id -u)" -eq 0 ]] || return 0
    if id -u postgres >/dev/null 2>&1; then
        RUN_USER=postgres
    else
        RUN_USER=txmail-pg
        if ! id -u "$RUN_USER" >/dev/null 2>&1; then
            log "creating system user $RUN_USER to run the server (PostgreSQL refuses to run as root)"
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin "$RUN_USER"
        fi
    fi
}

BINDIR=""
RUNDIR=""
DATADIR=""
STARTED=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ "$STARTED" -eq 1 ]]; then
        log "stopping server (port ${PGPORT:-?})"
        as_owner "$BINDIR/pg_ctl" -D "$DATADIR" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || as_owner "$BINDIR/pg_ctl" -D "$DATADIR" -m immediate -w -t 10 stop >/dev/null 2>&1 \
            || log "WARNING: pg_ctl stop failed for $DATADIR"
        STARTED=0
    fi
    if [[ -n "$RUNDIR" && -d "$RUNDIR" ]]; then
        if [[ -f "$RUNDIR/server.log" ]]; then
            cp "$RUNDIR/server.log" "$ROOT/.tmp/pg/last-server.log" 2>/dev/null || true
        fi
        rm -rf "$RUNDIR"
    fi
    return "$rc"
}

make_rundir() {
    local base="$ROOT/.tmp/pg"
    mkdir -p "$base"
    chmod 755 "$ROOT/.tmp" "$base" 2>/dev/null || true
    RUNDIR="$(mktemp -d "$base/run.XXXXXX")"
    # The server user must reach the directory and the socket path must fit
    # the 107-byte sun_path limit; otherwise fall back to a directory in /tmp.
    local ok=1
    if [[ -n "$RUN_USER" ]]; then
        chown "$RUN_USER" "$RUNDIR"
        runuser -u "$RUN_USER" -- test -w "$RUNDIR" || ok=0
    fi
    if (( ${#RUNDIR} + 24 > 100 )); then ok=0; fi
    if [[ "$ok" -eq 0 ]]; then
        rm -rf "$RUNDIR"
        RUNDIR="$(mktemp -d /tmp/txmail-pg.XXXXXX)"
        [[ -n "$RUN_USER" ]] && chown "$RUN_USER" "$RUNDIR"
        log "using $RUNDIR ($base is not usable by ${RUN_USER:-this user} or too long for a socket path)"
    fi
    chmod 700 "$RUNDIR"
    DATADIR="$RUNDIR/data"
    as_owner mkdir -p "$RUNDIR/sock"
}

start_server() {
    BINDIR="$(find_bindir)" || {
        log "no PostgreSQL server binaries found (initdb/pg_ctl)."
        log "Install them with: apt-get install postgresql   (or set TXMAIL_PG_BINDIR)"
        exit 3
    }
    pick_run_user
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    make_rundir

    local version
    version="$("$BINDIR/postgres" --version 2>/dev/null || echo "PostgreSQL")"
    log "initdb: $version in $DATADIR${RUN_USER:+ (as $RUN_USER)}"
    as_owner "$BINDIR/initdb" -D "$DATADIR" -U "$PG_SUPERUSER" --auth=trust \
        --encoding=UTF8 --locale=C >"$RUNDIR/initdb.log" 2>&1 || {
        tail -n 30 "$RUNDIR/initdb.log" >&2
        die "initdb failed"
    }

    # Tests do not need durability; a benchmark measures the server as it is
    # installed (TXMAIL_PG_DURABLE=1: every commit waits for the disk).
    local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if [[ -n "${TXMAIL_PG_DURABLE:-}" && "${TXMAIL_PG_DURABLE}" != "0" ]]; then
        durability=""
        log "durable settings (fsync, synchronous_commit and full_page_writes on)"
    fi
    local attempt port
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        if as_owner "$BINDIR/pg_ctl" -D "$DATADIR" -l "$RUNDIR/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k '$RUNDIR/sock' $durability -c max_connections=100" \
            start >/dev/null 2>&1; then
            STARTED=1
            break
        fi
        log "start on port $port failed (attempt $attempt); server log:"
        tail -n 10 "$RUNDIR/server.log" >&2 2>/dev/null || true
        as_owner "$BINDIR/pg_ctl" -D "$DATADIR" -m immediate stop >/dev/null 2>&1 || true
    done
    [[ "$STARTED" -eq 1 ]] || die "could not start PostgreSQL (log: .tmp/pg/last-server.log)"

    export PGHOST=127.0.0.1 PGPORT="$port" PGUSER="$PG_SUPERUSER" PGPASSWORD="" PGDATABASE="$PG_DBNAME"
    "$BINDIR/createdb" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$PGDATABASE" \
        || die "createdb $PGDATABASE failed"
    log "running on $PGHOST:$PGPORT (user $PGUSER, database $PGDATABASE)"
}

cmd="${1:-}"
case "$cmd" in
    bindir)
        find_bindir || exit 3
        ;;
    run)
        shift
        [[ "${1:-}" == "--" ]] && shift
        [[ $# -gt 0 ]] || die "usage: $0 run [--] CMD [ARGS...]"
        start_server
        set +e
        "$@"
        status=$?
        set -e
        exit "$status"
        ;;
    *)
        echo "usage: $0 run [--] CMD [ARGS...] | bindir" >&2
        exit 2
        ;;
esac
