#!/usr/bin/env bash
# Builds every fuzz target and runs each for a fixed time (seconds, default 30) from the
# committed seeds, then replays the regression inputs once. Exits non-zero on any crash.
#
#   bash fuzz/ci.sh [SECONDS]
#
# Works on a fresh machine with rustup: installs the nightly toolchain (minimal profile) and
# cargo-fuzz when they are missing. The corpus grows in fuzz/corpus/<target> (gitignored) and
# is reused by later runs; crashes land in fuzz/artifacts/<target> (gitignored too).
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET=${1:-30}
TARGETS=(decode protocol session)
export CARGO_TERM_COLOR=never
started=$SECONDS

step() { printf '\n=== fuzz: %s\n' "$*"; }

step "toolchain"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
rustup run nightly rustc --version
cargo fuzz --version

step "build (${TARGETS[*]})"
cargo +nightly fuzz build

# Bounded inputs: every input is small enough that one execution takes milliseconds, so no
# per-input time limit is needed (libFuzzer's default of 20 minutes only catches hangs).
max_len() {
  case "$1" in
    protocol) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

for target in "${TARGETS[@]}"; do
  step "run $target for ${SECONDS_PER_TARGET} s"
  mkdir -p "corpus/$target"
  cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
  dict=()
  if [[ -f "dicts/$target.dict" ]]; then
    dict=("-dict=dicts/$target.dict")
  fi
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$target")" \
    -print_final_stats=1 ${dict[@]+"${dict[@]}"}
done

step "replay regressions"
for target in "${TARGETS[@]}"; do
  dir="seeds/regressions/$target"
  if compgen -G "$dir/*" >/dev/null; then
    cargo +nightly fuzz run "$target" "$dir"/* -- -runs=1
  fi
done

printf '\n=== fuzz: passed in %d s\n' "$((SECONDS - started))"
