#!/usr/bin/env bash
# CI for the firmware example: builds it for the Cortex-M3 and runs it under QEMU with a
# timeout (it must exit 0 after checking the whole scripted sequence, its own JSON and base64
# telemetry and the claims decoders' stack cases), proves that a deliberate mismatch fails the
# run (built with `panic-location` too, so that feature keeps compiling), builds and runs the
# defmt variant (decoded with defmt-print), and checks flash and stack against ./budget with
# size-report.sh (which builds the full, no-libs, baseline-libs and baseline images).
#
# Installs what it needs on a fresh Debian machine with the Rust toolchain: the
# thumbv7m-none-eabi target and llvm-tools with rustup, qemu-system-arm with apt-get
# (binutils-arm-none-eabi too if llvm-tools is unavailable), defmt-print with cargo install.
# Exits non-zero on the first failure.
#
# Usage: bash examples/firmware/ci.sh     (from anywhere)
# Environment:
#   QEMU_TIMEOUT=120     seconds allowed for each QEMU run (the firmware needs well under 1 s)
#   DEFMT_PRINT=0        do not install or run defmt-print: only build the defmt variant
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
TARGET=thumbv7m-none-eabi
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
export CARGO_TERM_COLOR=never
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
export CARGO_TARGET_DIR=$TARGET_DIR
ELF=$TARGET_DIR/$TARGET/release/jwt-refresh-firmware
QEMU=(qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic
    -semihosting-config enable=on,target=native -kernel)
LOGS=$TARGET_DIR/ci-logs
mkdir -p "$LOGS"

step() { printf '\n=== firmware: %s\n' "$*"; }
fail() { echo "firmware CI FAILED: $*" >&2; exit 1; }
started=$SECONDS

as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

step "install: $TARGET, llvm-tools, qemu-system-arm"
rustup target add "$TARGET"
if ! rustup component add llvm-tools 2>/dev/null && ! rustup component add llvm-tools-preview; then
    command -v arm-none-eabi-size >/dev/null || apt_install binutils-arm-none-eabi
    export SIZE_TOOLS=gnu
fi
command -v qemu-system-arm >/dev/null || apt_install qemu-system-arm
qemu-system-arm --version | sed -n 1p

step "build (opt-level z) and run under QEMU: every decision must match"
cargo build --release
status=0
timeout "$QEMU_TIMEOUT" "${QEMU[@]}" "$ELF" >"$LOGS/run.txt" 2>"$LOGS/run.err" || status=$?
cat "$LOGS/run.txt"
[[ $status == 124 ]] && fail "QEMU timed out after $QEMU_TIMEOUT s"
[[ $status == 0 ]] || fail "the firmware exited with status $status"
grep -q '^PASS: all [0-9]* decisions matched' "$LOGS/run.txt" || fail "no PASS line"
grep -q '^telemetry: reading {' "$LOGS/run.txt" || fail "no telemetry reading"
# The README's command does the same through the runner in .cargo/config.toml.
timeout "$QEMU_TIMEOUT" cargo run --release >/dev/null 2>&1 || fail "cargo run --release failed"

step "a deliberate mismatch must fail the run (status 1)"
cargo build --release --features deliberate-mismatch,panic-location
status=0
timeout "$QEMU_TIMEOUT" "${QEMU[@]}" "$ELF" >"$LOGS/mismatch.txt" 2>&1 || status=$?
grep -E '^(!!|   expected:|FAIL)' "$LOGS/mismatch.txt" || true
[[ $status == 1 ]] || fail "the deliberate mismatch exited with status $status, not 1"
grep -q '^FAIL: decision' "$LOGS/mismatch.txt" || fail "the mismatch was not reported"
echo "the deliberate mismatch failed as it must (exit status 1)"

step "defmt build: the crate's and the firmware's output as defmt frames over semihosting"
cargo build --release --features defmt
if [[ ${DEFMT_PRINT:-1} != 0 ]]; then
    if ! command -v defmt-print >/dev/null; then
        cargo install defmt-print --locked --version "^1"
    fi
    status=0
    timeout "$QEMU_TIMEOUT" "${QEMU[@]}" "$ELF" 2>/dev/null >"$LOGS/defmt.bin" || status=$?
    defmt-print -e "$ELF" <"$LOGS/defmt.bin" >"$LOGS/defmt.txt" 2>&1 || true
    grep -E '^(DEBUG|WARN|PASS|FAIL)' "$LOGS/defmt.txt" || true
    [[ $status == 0 ]] || fail "the defmt firmware exited with status $status"
    grep -q '^PASS: all [0-9]* decisions matched' "$LOGS/defmt.txt" ||
        fail "the decoded defmt output has no PASS line"
    grep -q 'token endpoint: Login succeeded' "$LOGS/defmt.txt" ||
        fail "the crate's defmt log lines are missing"
else
    echo "DEFMT_PRINT=0: built only"
fi

step "flash and stack against the budget"
./size-report.sh

if ! git diff --quiet -- Cargo.lock 2>/dev/null; then
    echo "note: examples/firmware/Cargo.lock changed (the crate's dependencies moved): commit it"
fi
printf '\n=== firmware CI passed in %d s\n' "$((SECONDS - started))"
