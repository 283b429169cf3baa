#!/usr/bin/env bash
# Demo: migrate the example project, start the local sandbox and the example
# app (so the sandbox's signed webhooks reach it), send the welcome mail
# through both routes, and print what the sandbox received and what became of
# every Message, delivery events included. Both servers are always stopped.
#
# $TXMAIL_SANDBOX_PORT (8025) and $TXMAIL_DEMO_APP_PORT (8026) pick the ports,
# $TXMAIL_DEMO_WAIT the seconds to wait for each server (30).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
PORT="${TXMAIL_SANDBOX_PORT:-8025}"
APP_PORT="${TXMAIL_DEMO_APP_PORT:-8026}"
WAIT="${TXMAIL_DEMO_WAIT:-30}"
MANAGE=(example_project/manage.py)
SANDBOX="http://127.0.0.1:$PORT"
APP="http://127.0.0.1:$APP_PORT"
# The example project reads its provider URL from here, so both agree on the port.
export TXMAIL_NYLAS_API_URI="$SANDBOX"

[[ -x "$PYTHON" ]] || { echo "demo: $PYTHON not found; run 'make demo' (it creates .venv)" >&2; exit 2; }
mkdir -p .tmp

answers() { "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$1" 2>/dev/null; }
for url in "$SANDBOX/_sandbox/health" "$APP/admin/login/"; do
    if answers "$url"; then
        echo "demo: something already answers on $url; stop it first" >&2
        exit 1
    fi
done

PIDS=()
SETSID=(); command -v setsid >/dev/null && SETSID=(setsid)
stop_all() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    for pid in "${PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ ${#PIDS[@]} -gt 0 ]] && echo "==> servers stopped"
    exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start LOG CMD...: run a server in its own process group, logging to LOG.
start() {
    local log="$1"; shift
    "${SETSID[@]}" "$@" >"$log" 2>&1 &
    PIDS+=($!)
}

# wait_for URL LOG: until URL answers 200, or fail with the log's tail.
wait_for() {
    if ! "$PYTHON" - "$1" "$WAIT" "${PIDS[-1]}" <<'PY'
import os, sys, time, urllib.request
url, wait, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + wait
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except Exception:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        print("demo: the server process exited", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
print(f"demo: {url} did not answer within {wait:g}s", file=sys.stderr)
sys.exit(1)
PY
    then
        echo "---- last lines of $2 ----" >&2
        tail -n 40 "$2" >&2 || true
        exit 1
    fi
}

echo "==> migrate"
"$PYTHON" "${MANAGE[@]}" migrate --noinput

echo "==> starting the sandbox on $SANDBOX (log: .tmp/sandbox.log)"
start .tmp/sandbox.log "$PYTHON" "${MANAGE[@]}" txmail_sandbox --port "$PORT" \
    --webhook-url "nylas=$APP/txmail/webhooks/nylas/"
wait_for "$SANDBOX/_sandbox/health" .tmp/sandbox.log

echo "==> starting the example app on $APP, for the sandbox's webhooks (log: .tmp/app.log)"
start .tmp/app.log "$PYTHON" "${MANAGE[@]}" runserver "127.0.0.1:$APP_PORT" --noreload
wait_for "$APP/txmail/webhooks/nylas/?challenge=ready" .tmp/app.log

echo "==> txmail_demo"
"$PYTHON" "${MANAGE[@]}" txmail_demo --wait-for-events 20
echo "==> demo finished"
