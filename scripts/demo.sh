#!/usr/bin/env bash
# Demo: migrate the example project, start the local sandbox on port 8025,
# wait for it, send the demo mail, and stop the sandbox again.
#
#   scripts/demo.sh          (normally via `make demo`)
#
# $PYTHON picks the interpreter (default: .venv/bin/python).
# $TXMAIL_SANDBOX_PORT overrides the port, $TXMAIL_DEMO_WAIT the wait in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
PORT="${TXMAIL_SANDBOX_PORT:-8025}"
WAIT="${TXMAIL_DEMO_WAIT:-30}"
MANAGE=(example_project/manage.py)
LOG=.tmp/sandbox.log
HEALTH="http://127.0.0.1:$PORT/_sandbox/health"
# The example project reads its provider URL from here, so both agree on the port.
export TXMAIL_NYLAS_API_URI="http://127.0.0.1:$PORT"

[[ -x "$PYTHON" ]] || { echo "demo: $PYTHON not found; run 'make demo' (it creates .venv)" >&2; exit 2; }
[[ -f "${MANAGE[0]}" ]] || { echo "demo: ${MANAGE[0]} not found" >&2; exit 2; }
mkdir -p .tmp

echo "==> migrate"
"$PYTHON" "${MANAGE[@]}" migrate --noinput

if "$PYTHON" - "$HEALTH" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1)
PY
then
    echo "demo: something already answers on $HEALTH; stop it first (port $PORT is taken)" >&2
    exit 1
fi

SANDBOX_PID=""
signal_sandbox() {
    if [[ ${#SETSID[@]} -gt 0 ]]; then
        kill "-$1" -- "-$SANDBOX_PID" 2>/dev/null || kill "-$1" "$SANDBOX_PID" 2>/dev/null || true
    else
        kill "-$1" "$SANDBOX_PID" 2>/dev/null || true
    fi
}
stop_sandbox() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n "$SANDBOX_PID" ]] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
        echo "==> stopping the sandbox (pid $SANDBOX_PID)"
        signal_sandbox TERM
        for _ in $(seq 50); do
            kill -0 "$SANDBOX_PID" 2>/dev/null || break
            sleep 0.1
        done
        signal_sandbox KILL
        wait "$SANDBOX_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap stop_sandbox EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

echo "==> starting the sandbox on port $PORT (log: $LOG)"
# Own process group (setsid), so stopping it also stops any child it spawns.
SETSID=(); command -v setsid >/dev/null && SETSID=(setsid)
"${SETSID[@]}" "$PYTHON" "${MANAGE[@]}" txmail_sandbox --port "$PORT" >"$LOG" 2>&1 &
SANDBOX_PID=$!

echo "==> waiting for $HEALTH (up to ${WAIT}s)"
if ! "$PYTHON" - "$HEALTH" "$WAIT" "$SANDBOX_PID" <<'PY'
import os, sys, time, urllib.request
url, wait, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + wait
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        print("demo: the sandbox process exited", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.2)
print(f"demo: {url} did not answer within {wait:g}s", file=sys.stderr)
sys.exit(1)
PY
then
    echo "---- last lines of $LOG ----" >&2
    tail -n 40 "$LOG" >&2 || true
    exit 1
fi

echo "==> txmail_demo"
"$PYTHON" "${MANAGE[@]}" txmail_demo
echo "==> demo finished"
