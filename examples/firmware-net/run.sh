#!/usr/bin/env bash
# The firmware over a real network: builds examples/firmware-net for QEMU's RISC-V `virt` board,
# starts the Django SimpleJWT server of tests/interop (3-second access tokens, rotation and the
# blacklist; a token-endpoint outage of OUTAGE_COUNT refreshes after the first OUTAGE_AFTER),
# boots the firmware twice (the second boot restores the refresh token the first one saved),
# and checks both boots' output, QEMU's capture of their frames and the server's request log
# with check.py. Then reports the firmware's flash and RAM and the crate's share of them
# (size-report.sh).
#
# Networking: QEMU user networking with restrict=on (the guest reaches no host and no outside
# address) and one guestfwd rule: connections to 10.0.2.100:8000 start forwarder.py, which
# connects to the server on 127.0.0.1. Nothing else is ever contacted (check.py checks the
# capture).
#
# Installs what it needs on a fresh Debian machine with the Rust toolchain: the
# riscv32imac-unknown-none-elf target, llvm-tools, rustfmt and clippy (rustup), qemu-system-misc
# and, for the size report, binutils-riscv64-unknown-elf (apt-get, --no-install-recommends), the
# server's pinned Python packages (a venv, as tests/interop).
#
# Usage: bash examples/firmware-net/run.sh          (from anywhere)
# Environment: QEMU_TIMEOUT=180 (seconds per boot), FWN_KEEP=1 keeps the work folder,
#              SIZE_REPORT=0 skips the size report.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET=riscv32imac-unknown-none-elf
QEMU_TIMEOUT=${QEMU_TIMEOUT:-180}
PYTHON=${PYTHON:-python3}
USERNAME=device
# Boot 1: 60 requests 250 ms apart (about 20 s with the requests' own time: over six 3-second
# access lifetimes), far more often than the policy refreshes, so that a refresh before every
# request or a retry without backoff would show. Boot 2: 16.
BOOT1_REQUESTS=60 BOOT2_REQUESTS=16 INTERVAL_MS=250
# The outage: refreshes 4 to 6 of the server's life are answered 503 (boot 1).
OUTAGE_AFTER=3 OUTAGE_COUNT=3
export CARGO_TERM_COLOR=never
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$HERE/target}")
export CARGO_TARGET_DIR=$TARGET_DIR
ELF=$TARGET_DIR/$TARGET/release/jwt-refresh-firmware-net
WORK="$(mktemp -d "${TMPDIR:-/tmp}/jwt-refresh-firmware-net.XXXXXX")"
START=$SECONDS

say() { printf 'firmware-net: %s\n' "$*"; }
show() { # show FILE TITLE [LINES]: the tail of a log, on failure
  printf '\n----- %s (%s) -----\n' "$2" "$1" >&2
  if [[ -s "$1" ]]; then tail -n "${3:-60}" "$1" >&2; else echo "(empty)" >&2; fi
}
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# shellcheck source=../../tests/interop/server.sh
source "$ROOT/tests/interop/server.sh"
cleanup() {
  local rc=$?
  interop_stop
  if [[ $rc -eq 0 && -z "${FWN_KEEP:-}" ]]; then
    rm -rf "$WORK"
  else
    echo "firmware-net: work folder kept in $WORK" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. tools ----------------------------------------------------------------------------------
rustup target add "$TARGET" >"$WORK/rustup.log" 2>&1 || { show "$WORK/rustup.log" rustup; exit 1; }
packages=()
command -v qemu-system-riscv32 >/dev/null || packages+=(qemu-system-misc)
if [[ ${SIZE_REPORT:-1} != 0 ]] && ! command -v riscv64-unknown-elf-addr2line >/dev/null; then
  packages+=(binutils-riscv64-unknown-elf) # attribute.py's objdump and addr2line
fi
if ((${#packages[@]})); then
  say "installing ${packages[*]}"
  { as_root apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${packages[@]}"; } >"$WORK/apt.log" 2>&1 || { show "$WORK/apt.log" apt-get; exit 1; }
fi
QEMU_VERSION="$(qemu-system-riscv32 --version | sed -n 1p)"
interop_venv

# --- 2. the firmware ---------------------------------------------------------------------------
say "building the firmware (release, opt-level z, $TARGET); format and clippy"
rustup component add rustfmt clippy >>"$WORK/rustup.log" 2>&1 || { show "$WORK/rustup.log" rustup; exit 1; }
(cd "$HERE" && cargo fmt --check && cargo build --release &&
  cargo clippy --release -- -D warnings &&
  cargo clippy --release --features baseline -- -D warnings &&
  cargo clippy --release --features panic-location -- -D warnings) >"$WORK/cargo.log" 2>&1 ||
  { show "$WORK/cargo.log" "cargo fmt / build / clippy" 80; exit 1; }
# The firmware's whole dependency tree (proc-macros left out) turns on no std and no alloc.
tree="$(cd "$HERE" && cargo tree -e normal,no-proc-macro,features)"
if grep -E 'feature "(std|alloc)"' <<<"$tree"; then
  echo "firmware-net: a dependency of the firmware enables std or alloc" >&2; exit 1
fi

# --- 3. the server, with the outage ------------------------------------------------------------
export INTEROP_OUTAGE="$OUTAGE_AFTER:$OUTAGE_COUNT"
interop_start gunicorn 2 8
say "server up at $API (gunicorn; $VERSIONS; outage: refreshes $((OUTAGE_AFTER + 1))" \
  "to $((OUTAGE_AFTER + OUTAGE_COUNT)) answered 503)"

# --- 4. two boots ------------------------------------------------------------------------------
BOOT_DIR="$WORK/device"   # QEMU's working directory: the device's files (config, store)
mkdir -p "$BOOT_DIR"
boot() { # boot NAME REQUESTS: one QEMU run; its output in $WORK/NAME.out, lines in NAME.meta
  local name=$1 requests=$2 start end rc=0
  printf 'username=%s\npassword=%s\nrequests=%d\ninterval_ms=%d\nseed=%d\n' \
    "$USERNAME" "$PASSWORD" "$requests" "$INTERVAL_MS" "$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')" \
    >"$BOOT_DIR/firmware.cfg"
  start=$(wc -l <"$INTEROP_LOG")
  (cd "$BOOT_DIR" && timeout "$QEMU_TIMEOUT" qemu-system-riscv32 \
    -machine virt -cpu rv32 -smp 1 -m 16M -nographic -bios none \
    -semihosting-config enable=on,target=native \
    -global virtio-mmio.force-legacy=false \
    -netdev "user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:8000-cmd:$FORWARD" \
    -device virtio-net-device,netdev=net0 \
    -object "filter-dump,id=dump0,netdev=net0,file=$WORK/$name.pcap" \
    -kernel "$ELF") >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null || rc=$?
  end=$(wc -l <"$INTEROP_LOG")
  printf '{"start": %d, "end": %d, "rc": %d, "requests": %d, "interval_ms": %d}\n' \
    "$start" "$end" "$rc" "$requests" "$INTERVAL_MS" >"$WORK/$name.meta"
  cp "$BOOT_DIR/refresh-token" "$WORK/store-after-$name.txt" 2>/dev/null || true
  say "boot $name: exit status $rc ($(grep -c '"i":' "$WORK/$name.out" || true) request lines)"
}
# libslirp splits the -cmd string at spaces and QEMU's options at commas: the forwarder runs
# from the work folder, and neither path may hold either.
cp "$HERE/forwarder.py" "$WORK/forwarder.py"
FORWARD="$PY $WORK/forwarder.py $PORT $WORK/forwarder.log"
if [[ $FORWARD == *,* || "$PY$WORK" == *" "* ]]; then
  echo "firmware-net: the venv ($PY) or work folder ($WORK) path holds a space or a comma," \
    "which QEMU's guestfwd command cannot carry (set INTEROP_VENV and TMPDIR)" >&2
  exit 2
fi
boot boot1 "$BOOT1_REQUESTS"
boot boot2 "$BOOT2_REQUESTS"

# --- 5. checks ---------------------------------------------------------------------------------
check_rc=0
FWN_PASSWORD="$PASSWORD" "$PY" "$HERE/check.py" --api "$API" --log "$INTEROP_LOG" --dir "$WORK" \
  --lifetime 3 --outage "$OUTAGE_AFTER:$OUTAGE_COUNT" >"$WORK/check.out" 2>&1 ||
  check_rc=$?
interop_stop
sed 's/^/firmware-net: /' "$WORK/check.out"
trouble="$(grep -E -n 'Traceback|Error|locked|WORKER TIMEOUT|\[(ERROR|CRITICAL)\]' "$WORK/server.out" || true)"
if [[ -n $trouble ]]; then printf '\nfirmware-net: the server logged trouble:\n%s\n' "$trouble" >&2; fi
if [[ $check_rc -ne 0 || -n $trouble ]]; then
  # The firmware's output, with anything shaped like a JWT and the password masked.
  for name in boot1 boot2; do
    for f in "$WORK/$name.out" "$WORK/$name.err"; do
      sed -E -e 's/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/<token>/g' \
        -e "s/$PASSWORD/<password>/g" "$f" >"$f.masked" 2>/dev/null || true
    done
    show "$WORK/$name.out.masked" "$name output, masked" 40
    show "$WORK/$name.err.masked" "$name stderr, masked" 20
  done
  show "$WORK/forwarder.log" "forwarder errors" 20
  show "$WORK/server.out" "gunicorn" 30
  exit 1
fi
# The checks can fail: the same runs against a wrong outage, and with a token in the output.
if FWN_PASSWORD="$PASSWORD" "$PY" "$HERE/check.py" --api "$API" --log "$INTEROP_LOG" \
  --dir "$WORK" --lifetime 3 --outage "$OUTAGE_AFTER:$((OUTAGE_COUNT + 1))" \
  >"$WORK/check-outage.out" 2>&1; then
  echo "firmware-net: check.py passed a run against a wrong outage" >&2; exit 1
fi
mkdir -p "$WORK/leak"
cp "$WORK"/boot?.meta "$WORK"/boot?.out "$WORK"/boot?.err "$WORK"/boot?.pcap \
  "$WORK"/store-after-* "$WORK/leak/"
printf '{"i":99,"note":"%s"}\n' "$(cat "$WORK/store-after-boot2.txt")" >>"$WORK/leak/boot2.out"
if FWN_PASSWORD="$PASSWORD" "$PY" "$HERE/check.py" --api "$API" --log "$INTEROP_LOG" \
  --dir "$WORK/leak" --lifetime 3 --outage "$OUTAGE_AFTER:$OUTAGE_COUNT" \
  >"$WORK/check-leak.out" 2>&1 || ! grep -q "token or password text" "$WORK/check-leak.out" ||
  grep -qF "$(cat "$WORK/store-after-boot2.txt")" "$WORK/check-leak.out"; then
  echo "firmware-net: check.py did not report a token in the firmware's output, or quoted it" >&2
  exit 1
fi
say "check.py fails as it must on a wrong outage and on a token in the output (without quoting it)"
say "$QEMU_VERSION"

# --- 6. size -----------------------------------------------------------------------------------
if [[ ${SIZE_REPORT:-1} != 0 ]]; then
  bash "$HERE/size-report.sh"
fi
say "passed in $((SECONDS - START)) s"
