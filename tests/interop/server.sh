# shellcheck shell=bash
# The interop server, for scripts that source this file: tests/interop/run.sh and
# examples/firmware-net/run.sh. Defines:
#
#   interop_venv               creates or reuses the venv with the pinned packages ($INTEROP_VENV,
#                              default tests/interop/.venv); sets PY and VERSIONS
#   interop_start KIND W T     migrates a fresh SQLite database in $WORK, creates the user
#                              $USERNAME with a random PASSWORD, and serves on a free port of
#                              127.0.0.1 (KIND gunicorn with W workers of T threads, or
#                              runserver); sets PORT, API, SERVER_PID; empties $INTEROP_LOG
#   interop_stop               stops the server (gunicorn's quick shutdown, then KILL if stuck)
#
# The caller sets WORK (its work folder), USERNAME and PYTHON, and defines `say MSG` and
# `show FILE TITLE [LINES]`. Extra server settings come through the environment (settings.py).

INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVER_PID=""

interop_venv() {
  local venv=${INTEROP_VENV:-$INTEROP_DIR/.venv} want
  want="$(cat "$INTEROP_DIR/requirements.txt"; "$PYTHON" -c 'import sys; print(sys.version)')"
  if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.interop-stamp" 2>/dev/null)" != "$want" ]]; then
    say "creating $venv and installing $(grep -c '==' "$INTEROP_DIR/requirements.txt") pinned packages"
    rm -rf "$venv"
    if ! "$PYTHON" -m venv "$venv" >>"$WORK/pip.log" 2>&1; then
      if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
        say "python3 -m venv failed; installing python3-venv"
        rm -rf "$venv"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } \
          >>"$WORK/pip.log" 2>&1 || { show "$WORK/pip.log" "apt-get"; exit 1; }
      fi
      rm -rf "$venv"
      "$PYTHON" -m venv "$venv" >>"$WORK/pip.log" 2>&1 || { show "$WORK/pip.log" "venv"; exit 1; }
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
      -r "$INTEROP_DIR/requirements.txt" >>"$WORK/pip.log" 2>&1 || { show "$WORK/pip.log" "pip" 80; exit 1; }
    printf '%s' "$want" >"$venv/.interop-stamp"
  fi
  PY="$venv/bin/python"
  VERSIONS="$("$PY" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in
    ("Django", "djangorestframework", "djangorestframework-simplejwt", "PyJWT", "gunicorn")))')"
}

interop_start() {
  local kind=$1 workers=$2 threads=$3 attempt
  export PYTHONDONTWRITEBYTECODE=1
  export DJANGO_SETTINGS_MODULE=interop_server.settings
  export INTEROP_DB="$WORK/db.sqlite3" INTEROP_LOG="$WORK/server.log"
  INTEROP_SECRET_KEY="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')"
  PASSWORD="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(16))')"
  export INTEROP_SECRET_KEY
  : >"$INTEROP_LOG"
  {
    "$PY" "$INTEROP_DIR/manage.py" migrate --noinput
    INTEROP_USER="$USERNAME" INTEROP_PASSWORD="$PASSWORD" "$PY" "$INTEROP_DIR/manage.py" shell -c '
import os
from django.contrib.auth import get_user_model
get_user_model().objects.create_user(os.environ["INTEROP_USER"], password=os.environ["INTEROP_PASSWORD"])
'
  } >"$WORK/setup.log" 2>&1 || { show "$WORK/setup.log" "migrate / create user"; exit 1; }

  for attempt in 1 2 3; do
    PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    if [[ $kind == gunicorn ]]; then
      # gthread workers: a thread per request being served, idle keep-alive connections parked
      # in the worker's poller. Keep-alive 30 s: longer than any pause of a client between
      # requests, so that a pooled connection (ureq, reqwest) is not closed under a request.
      "$(dirname "$PY")/gunicorn" --chdir "$INTEROP_DIR" --bind "127.0.0.1:$PORT" \
        --workers "$workers" --worker-class gthread --threads "$threads" \
        --keep-alive 30 --timeout 60 --graceful-timeout 5 --log-level warning \
        interop_server.wsgi:application >"$WORK/server.out" 2>&1 &
    else
      "$PY" "$INTEROP_DIR/manage.py" runserver "127.0.0.1:$PORT" --noreload >"$WORK/server.out" 2>&1 &
    fi
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
    interop_stop
    if [[ $attempt -eq 3 ]]; then show "$WORK/server.out" "$kind"; exit 1; fi
  done
  API="http://127.0.0.1:$PORT"
  # The health probes are not part of any run.
  : >"$INTEROP_LOG"
}

interop_stop() {
  if [[ -n "$SERVER_PID" ]]; then
    # gunicorn: INT is its quick shutdown (the master stops its workers); runserver: as ^C.
    kill -INT "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      # Stuck: its workers (children of this pid) first, then the master.
      pkill -KILL -P "$SERVER_PID" 2>/dev/null || true
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
