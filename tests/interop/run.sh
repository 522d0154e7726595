#!/usr/bin/env bash
# Real interop test: the crate's std_http example against a real Django + DRF + SimpleJWT server
# (3-second access tokens, rotation, blacklist), checked from the server's request log.
#
#   bash tests/interop/run.sh        # from the repository root (any cwd works)
#
# Needs Python 3 (venv + pip) and PyPI; pins are in tests/interop/requirements.txt. The venv is
# kept in tests/interop/.venv (gitignored; INTEROP_VENV overrides) and reused while the pins are
# unchanged. INTEROP_CLIENT="python3 tests/interop/mock_client.py" swaps in the Python stand-in
# client (to test the harness itself). Quiet on success; on failure prints the relevant logs and
# keeps its work folder.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

PYTHON=${PYTHON:-python3}
VENV=${INTEROP_VENV:-$HERE/.venv}
USERNAME=device
START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/jwt-refresh-interop.XXXXXX")"
SERVER_PID=""
CLIENT_PID=""

say() { printf 'interop: %s\n' "$*"; }
show() { # show FILE TITLE: the tail of a log, on failure
  printf '\n----- %s (%s) -----\n' "$2" "$1" >&2
  if [[ -s "$1" ]]; then tail -n "${3:-60}" "$1" >&2; else echo "(empty)" >&2; fi
}

stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  local rc=$?
  if [[ -n "$CLIENT_PID" ]]; then
    kill "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  stop_server
  if [[ $rc -eq 0 ]]; then
    rm -rf "$WORK"
  else
    echo "interop: FAILED (exit $rc); logs kept in $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. virtual environment with the pinned server packages -----------------------------------
want="$(cat "$HERE/requirements.txt"; "$PYTHON" -c 'import sys; print(sys.version)')"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.interop-stamp" 2>/dev/null)" != "$want" ]]; then
  say "creating $VENV and installing $(grep -c '==' "$HERE/requirements.txt") pinned packages"
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV" >>"$WORK/pip.log" 2>&1; then
    if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
      say "python3 -m venv failed; installing python3-venv"
      rm -rf "$VENV"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } \
        >>"$WORK/pip.log" 2>&1 || { show "$WORK/pip.log" "apt-get"; exit 1; }
    fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" >>"$WORK/pip.log" 2>&1 || { show "$WORK/pip.log" "venv"; exit 1; }
  fi
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
    -r "$HERE/requirements.txt" >>"$WORK/pip.log" 2>&1 || { show "$WORK/pip.log" "pip" 80; exit 1; }
  printf '%s' "$want" >"$VENV/.interop-stamp"
fi
PY="$VENV/bin/python"
VERSIONS="$("$PY" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("Django", "djangorestframework", "djangorestframework-simplejwt", "PyJWT")))')"
INSTALLED=$SECONDS

# --- 2. the client ---------------------------------------------------------------------------
if [[ -n "${INTEROP_CLIENT:-}" ]]; then
  read -r -a CLIENT <<<"$INTEROP_CLIENT"
  say "client: $INTEROP_CLIENT (INTEROP_CLIENT)"
else
  if [[ ! -f examples/std_http.rs && ! -f examples/std_http/main.rs ]]; then
    echo "interop: examples/std_http is missing: nothing to test (set INTEROP_CLIENT to test the harness)" >&2
    exit 1
  fi
  say "building the std_http example"
  cargo build --quiet --example std_http >"$WORK/cargo.log" 2>&1 || { show "$WORK/cargo.log" "cargo build"; exit 1; }
  CLIENT=(cargo run --quiet --example std_http --)
fi

# --- 3. the server ---------------------------------------------------------------------------
export PYTHONDONTWRITEBYTECODE=1
export DJANGO_SETTINGS_MODULE=interop_server.settings
export INTEROP_DB="$WORK/db.sqlite3" INTEROP_LOG="$WORK/server.log"
INTEROP_SECRET_KEY="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')"
PASSWORD="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(16))')"
export INTEROP_SECRET_KEY
: >"$INTEROP_LOG"

{
  "$PY" "$HERE/manage.py" migrate --noinput
  INTEROP_USER="$USERNAME" INTEROP_PASSWORD="$PASSWORD" "$PY" "$HERE/manage.py" shell -c '
import os
from django.contrib.auth import get_user_model
get_user_model().objects.create_user(os.environ["INTEROP_USER"], password=os.environ["INTEROP_PASSWORD"])
'
} >"$WORK/setup.log" 2>&1 || { show "$WORK/setup.log" "migrate / create user"; exit 1; }

for attempt in 1 2 3; do
  PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  "$PY" "$HERE/manage.py" runserver "127.0.0.1:$PORT" --noreload >"$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  if "$PY" - "$PORT" "$SERVER_PID" <<'PYEOF'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)  # the server died (port taken?)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health/", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
PYEOF
  then
    break
  fi
  stop_server
  if [[ $attempt -eq 3 ]]; then show "$WORK/server.out" "runserver"; exit 1; fi
done
API="http://127.0.0.1:$PORT"
say "server up at $API (pid $SERVER_PID; $VERSIONS)"

# --- 4. the runs -----------------------------------------------------------------------------
# run_client NAME REQUESTS INTERVAL_MS [EXTRA ARGS...]: runs the client, records which server log
# lines belong to the run, and its exit status, for check.py.
run_client() {
  local name=$1 requests=$2 interval=$3 start end rc
  shift 3
  start=$(wc -l <"$INTEROP_LOG")
  say "run $name: --requests $requests --interval-ms $interval $*"
  # In the background and waited for, so that a signal stops the script (and the client, in
  # cleanup) at once.
  "${CLIENT[@]}" --api "$API" --username "$USERNAME" --password "$PASSWORD" \
    --requests "$requests" --interval-ms "$interval" "$@" \
    >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" </dev/null &
  CLIENT_PID=$!
  rc=0
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  end=$(wc -l <"$INTEROP_LOG")
  printf '{"start": %d, "end": %d, "rc": %d, "requests": %d, "interval_ms": %d}\n' \
    "$start" "$end" "$rc" "$requests" "$interval" >"$WORK/$name.meta"
  if [[ $rc -ne 0 ]]; then
    echo "interop: run $name: the client exited $rc" >&2
    show "$WORK/$name.stderr" "run $name stderr" 30
  fi
}

STORE="$WORK/refresh.txt"
run_client A 24 500
run_client B 8 500 --store "$STORE"
cp "$STORE" "$WORK/store-after-B.txt" 2>/dev/null || true
run_client C 8 500 --store "$STORE"
cp "$STORE" "$WORK/store-after-C.txt" 2>/dev/null || true

# --- 5. check --------------------------------------------------------------------------------
if ! "$PY" "$HERE/check.py" --api "$API" --log "$INTEROP_LOG" --dir "$WORK" --lifetime 3; then
  for name in A B C; do show "$WORK/$name.stderr" "run $name stderr" 15; done
  show "$WORK/server.out" "runserver" 30
  exit 1
fi
stop_server
say "passed in $((SECONDS - START)) s ($((SECONDS - INSTALLED)) s after installs); client: ${CLIENT[*]}"
