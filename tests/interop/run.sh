#!/usr/bin/env bash
# Real interop test: the crate's clients against a real Django + DRF + SimpleJWT server (3-second
# access tokens, rotation, blacklist) served by gunicorn, checked from the server's request log.
#
#   bash tests/interop/run.sh        # from the repository root (any cwd works)
#
# Run sets (all by default; INTEROP_SETS="std ureq" picks some):
#   std       A, B, C        examples/std_http over its own std::net transport: a plain run, a
#                            run with --store (logs in, saves every rotation) and one restoring
#                            from it
#   ureq      UA, UB, UC     the same with std_http --transport ureq (the UreqTransport adapter)
#   reqwest   RA, RB, RC     the same with examples/tokio_server --tasks 1 (the ReqwestTransport
#                            adapter under tokio)
#   reqwless  RLA, RLB, RLC  the same with tokio_server --tasks 1 --transport reqwless (the
#                            firmware's ReqwlessTransport over embedded-nal-async, here on tokio's
#                            TCP: examples/support/tokio_stack.rs). Needs Rust 1.91 or newer.
#   threads   T32            std_http --concurrency 32: 32 threads, one SharedClient, about 20 s
#   tasks     K100           tokio_server --tasks 100: 100 tokio tasks, one SharedClient, about 20 s
# check.py states what each set must show (and why its bounds are what they are).
#
# Needs Python 3 (venv + pip) and PyPI; pins are in tests/interop/requirements.txt. The venv is
# kept in tests/interop/.venv (gitignored; INTEROP_VENV overrides) and reused while the pins are
# unchanged. Every run set is served by one gunicorn server on 127.0.0.1 (INTEROP_WORKERS worker
# processes, default 4, of INTEROP_THREADS threads each, default 32: more than the 100 tasks'
# connections). INTEROP_SERVER=runserver serves with Django's development server instead, for
# diagnosis only (it is not meant to hold the concurrent sets' load).
#
# INTEROP_CLIENT="python3 tests/interop/mock_client.py" swaps in the Python stand-in client for
# every set (to test the harness itself). INTEROP_VERBOSE=1 prints check.py's figures for every
# run; INTEROP_KEEP=1 keeps the work folder (logs, outputs) after a pass. Quiet on success (one
# line per run set); on failure prints the relevant logs and keeps its work folder.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

PYTHON=${PYTHON:-python3}
SETS=${INTEROP_SETS:-std ureq reqwest reqwless threads tasks}
SERVER_KIND=${INTEROP_SERVER:-gunicorn}
WORKERS=${INTEROP_WORKERS:-4}
THREADS=${INTEROP_THREADS:-32}
USERNAME=device
START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/jwt-refresh-interop.XXXXXX")"
CLIENT_PID=""

say() { printf 'interop: %s\n' "$*"; }
show() { # show FILE TITLE [LINES]: the tail of a log, on failure
  printf '\n----- %s (%s) -----\n' "$2" "$1" >&2
  if [[ -s "$1" ]]; then tail -n "${3:-60}" "$1" >&2; else echo "(empty)" >&2; fi
}
want_set() { [[ " $SETS " == *" $1 "* ]]; }
for s in $SETS; do
  case $s in std | ureq | reqwest | reqwless | threads | tasks) ;; *)
    echo "interop: unknown run set '$s' in INTEROP_SETS (std ureq reqwest reqwless threads tasks)" >&2
    exit 2
    ;;
  esac
done
case $SERVER_KIND in gunicorn | runserver) ;; *)
  echo "interop: INTEROP_SERVER must be gunicorn or runserver" >&2
  exit 2
  ;;
esac

# shellcheck source=server.sh
source "$HERE/server.sh" # interop_venv, interop_start, interop_stop
stop_server() { interop_stop; }
cleanup() {
  local rc=$?
  if [[ -n "$CLIENT_PID" ]]; then
    kill "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  stop_server
  if [[ $rc -eq 0 && -z "${INTEROP_KEEP:-}" ]]; then
    rm -rf "$WORK"
  elif [[ $rc -eq 0 ]]; then
    echo "interop: work folder kept in $WORK (INTEROP_KEEP)"
  else
    echo "interop: FAILED (exit $rc); logs kept in $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. virtual environment with the pinned server packages -----------------------------------
interop_venv
INSTALLED=$SECONDS

# --- 2. the clients --------------------------------------------------------------------------
# Each build is copied out of target/: std_http is built twice (with and without the ureq
# feature), tokio_server twice (reqwest, and reqwest,reqwless), and both builds of each land on
# the same path there.
BIN="$WORK/bin"
mkdir -p "$BIN"
build() { # build NAME FEATURES EXAMPLE: cargo build, then copy the example to $BIN/NAME
  local name=$1 features=$2 example=$3 dir
  cargo build --quiet ${features:+--features "$features"} --example "$example" \
    >>"$WORK/cargo.log" 2>&1 || { show "$WORK/cargo.log" "cargo build $features $example"; exit 1; }
  dir="$(cargo metadata --format-version 1 --no-deps |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples"
  cp "$dir/$example" "$BIN/$name"
}
if [[ -n "${INTEROP_CLIENT:-}" ]]; then
  read -r -a MOCK <<<"$INTEROP_CLIENT"
  say "client: $INTEROP_CLIENT (INTEROP_CLIENT) for every set"
  STD_CLIENT=("${MOCK[@]}")
  UREQ_CLIENT=("${MOCK[@]}" --transport ureq)
  TOKIO_CLIENT=("${MOCK[@]}")
  REQWLESS_CLIENT=("${MOCK[@]}" --transport reqwless)
else
  for f in examples/std_http/main.rs examples/tokio_server.rs; do
    if [[ ! -f $f ]]; then
      echo "interop: $f is missing (set INTEROP_CLIENT to test the harness)" >&2
      exit 1
    fi
  done
  if want_set reqwless; then
    # reqwless 0.14 declares rust-version 1.91 (the crate's own MSRV is lower): say so plainly
    # rather than through a failed build.
    rustc_version="$(rustc --version | awk '{print $2}')"
    if ! printf '1.91.0\n%s\n' "${rustc_version%%-*}" | sort -C -V; then
      echo "interop: the reqwless set needs Rust 1.91 or newer (rustc $rustc_version);" \
        "leave it out with INTEROP_SETS" >&2
      exit 1
    fi
  fi
  say "building the clients (std_http, std_http --features ureq, tokio_server --features" \
    "reqwest, tokio_server --features reqwest,reqwless)"
  if want_set std || want_set threads; then build std_http "" std_http; fi
  if want_set ureq; then build std_http-ureq ureq std_http; fi
  if want_set reqwest || want_set tasks; then build tokio_server reqwest tokio_server; fi
  if want_set reqwless; then build tokio_server-reqwless reqwest,reqwless tokio_server; fi
  STD_CLIENT=("$BIN/std_http")
  UREQ_CLIENT=("$BIN/std_http-ureq" --transport ureq)
  TOKIO_CLIENT=("$BIN/tokio_server")
  REQWLESS_CLIENT=("$BIN/tokio_server-reqwless" --transport reqwless)
fi
BUILT=$SECONDS

# --- 3. the server ---------------------------------------------------------------------------
interop_start "$SERVER_KIND" "$WORKERS" "$THREADS"
if [[ $SERVER_KIND == gunicorn ]]; then
  say "server up at $API (gunicorn, $WORKERS workers x $THREADS threads; $VERSIONS)"
else
  say "server up at $API (runserver; $VERSIONS)"
fi

# --- 4. the runs -----------------------------------------------------------------------------
# run_client NAME CALLERS REQUESTS INTERVAL_MS CLIENT [ARGS...]: runs the client with the
# server's address and credentials, records which server log lines belong to the run, its exit
# status and wall-clock times, for check.py. CALLERS: the threads or tasks the ARGS ask for.
RUNS=()
run_client() {
  local name=$1 callers=$2 requests=$3 interval=$4 start end t0 t1 rc
  shift 4
  RUNS+=("$name")
  start=$(wc -l <"$INTEROP_LOG")
  t0=$(date +%s.%N)
  if [[ -n "${INTEROP_VERBOSE:-}" ]]; then
    say "run $name: $* --requests $requests --interval-ms $interval"
  fi
  # In the background and waited for, so that a signal stops the script (and the client, in
  # cleanup) at once.
  "$@" --api "$API" --username "$USERNAME" --password "$PASSWORD" \
    --requests "$requests" --interval-ms "$interval" \
    >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" </dev/null &
  CLIENT_PID=$!
  rc=0
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  t1=$(date +%s.%N)
  end=$(wc -l <"$INTEROP_LOG")
  printf '{"start": %d, "end": %d, "rc": %d, "requests": %d, "interval_ms": %d, "callers": %d, ' \
    "$start" "$end" "$rc" "$requests" "$interval" "$callers" >"$WORK/$name.meta"
  printf '"wall_start": %s, "wall_end": %s}\n' "$t0" "$t1" >>"$WORK/$name.meta"
  if [[ $rc -ne 0 ]]; then
    echo "interop: run $name: the client exited $rc" >&2
    show "$WORK/$name.stderr" "run $name stderr" 30
  fi
}

# sequence SET P S R CLIENT...: the plain run P, then S with an empty --store, then R restoring
# from it; copies of the store after S and R for check.py.
CHECK_ARGS=()
sequence() {
  local set=$1 p=$2 s=$3 r=$4 store
  shift 4
  store="$WORK/$set-refresh.txt"
  run_client "$p" 1 24 500 "$@"
  run_client "$s" 1 8 500 "$@" --store "$store"
  cp "$store" "$WORK/store-after-$s.txt" 2>/dev/null || true
  run_client "$r" 1 8 500 "$@" --store "$store"
  cp "$store" "$WORK/store-after-$r.txt" 2>/dev/null || true
  CHECK_ARGS+=(--set "$set=$p,$s,$r")
}

# Concurrent runs: about 20 s of requests from every caller (the first at 0 s, the last at 20 s).
# 32 threads x 41 requests 500 ms apart (about 64 requests/s); 100 tasks x 21 requests 1 s
# apart (about 100 requests/s).
if want_set std; then sequence std A B C "${STD_CLIENT[@]}"; fi
if want_set ureq; then sequence ureq UA UB UC "${UREQ_CLIENT[@]}"; fi
if want_set reqwest; then sequence reqwest RA RB RC "${TOKIO_CLIENT[@]}" --tasks 1; fi
if want_set reqwless; then sequence reqwless RLA RLB RLC "${REQWLESS_CLIENT[@]}" --tasks 1; fi
if want_set threads; then
  run_client T32 32 41 500 "${STD_CLIENT[@]}" --concurrency 32
  CHECK_ARGS+=(--concurrent "threads=T32")
fi
if want_set tasks; then
  run_client K100 100 21 1000 "${TOKIO_CLIENT[@]}" --tasks 100
  CHECK_ARGS+=(--concurrent "tasks=K100")
fi

# --- 5. check --------------------------------------------------------------------------------
# Trouble in the server's output (a traceback, an internal server error, "database is locked",
# a worker timeout, a gunicorn error) fails the test, whatever the answers were. (Django's
# "Unauthorized: ..." warnings are expected: check.py's replays of rotated refresh tokens.)
server_trouble() {
  grep -E -n 'Traceback|Error|locked|WORKER TIMEOUT|\[(ERROR|CRITICAL|WARNING)\]' \
    "$WORK/server.out" || true
}
# check.py replays rotated refresh tokens against the server, so it runs before the server stops.
check_rc=0
"$PY" "$HERE/check.py" --api "$API" --log "$INTEROP_LOG" --dir "$WORK" --lifetime 3 \
  ${INTEROP_VERBOSE:+--verbose} "${CHECK_ARGS[@]}" >"$WORK/check.out" 2>&1 || check_rc=$?
stop_server
trouble="$(server_trouble)"
sed 's/^/interop: /' "$WORK/check.out"
if [[ -n $trouble ]]; then
  printf '\ninterop: the server logged trouble:\n%s\n' "$trouble" >&2
fi
if [[ $check_rc -ne 0 || -n $trouble ]]; then
  for name in "${RUNS[@]}"; do show "$WORK/$name.stderr" "run $name stderr" 15; done
  show "$WORK/server.out" "$SERVER_KIND" 30
  exit 1
fi
say "passed in $((SECONDS - START)) s ($((BUILT - INSTALLED)) s building the clients," \
  "$((SECONDS - BUILT)) s serving and checking)"
