#!/usr/bin/env bash
# Builds every flash-probe variant (baseline, decode, times, decode-float, times-float, f64) at
# opt-level "z" and "s" and prints a table of their section sizes, with the growth of
# .text+.rodata over the baseline built at the same opt-level, then the largest symbols of the
# `decode` variant. decode-float and times-float are decode and times with jwt-refresh's
# `float-dates` feature; f64 is `str::parse::<f64>` alone.
#
# Usage: tools/flash-probe/measure.sh            (from anywhere)
# Environment:
#   TARGET=thumbv7m-none-eabi   another Cortex-M target (default thumbv7em-none-eabihf)
#   SIZE_TOOLS=gnu              use Debian's binutils-arm-none-eabi instead of llvm-tools
#   TOP=15                      how many symbols to list
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
HERE=$PWD
TARGET=${TARGET:-thumbv7em-none-eabihf}
TOP=${TOP:-15}
TARGET_DIR=$HERE/target
OUT=$TARGET_DIR/measure
VARIANTS=(baseline decode times decode-float times-float f64)
# variant -> its Cargo features (Cargo.toml)
declare -A FEATURES=([baseline]="" [decode]=decode [times]=times [decode-float]=decode,float-dates
    [times-float]=times,float-dates [f64]=f64)
# opt-level -> cargo profile (both in Cargo.toml)
OPTS=(z s)
declare -A PROFILE=([z]=release [s]=release-s)

log() { echo "measure.sh: $*" >&2; }

as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

ensure_target() {
    if command -v rustup >/dev/null 2>&1 \
        && ! rustup target list --installed | grep -qx "$TARGET"; then
        log "installing the $TARGET target with rustup"
        rustup target add "$TARGET" >&2
    fi
}

# Sets SIZE and NM: rustup's llvm-tools first, Debian's binutils-arm-none-eabi otherwise.
find_tools() {
    if [[ ${SIZE_TOOLS:-} != gnu ]]; then
        local sysroot bin attempt
        sysroot=$(rustc --print sysroot)
        for attempt in 1 2; do
            for bin in "$sysroot"/lib/rustlib/*/bin; do
                if [[ -x $bin/llvm-size && -x $bin/llvm-nm ]]; then
                    SIZE=$bin/llvm-size NM=$bin/llvm-nm
                    return
                fi
            done
            [[ $attempt == 1 ]] && command -v rustup >/dev/null 2>&1 || break
            log "installing llvm-tools with rustup"
            rustup component add llvm-tools >&2 || rustup component add llvm-tools-preview >&2 \
                || break
        done
        log "llvm-tools unavailable, falling back to binutils-arm-none-eabi"
    fi
    if ! command -v arm-none-eabi-size >/dev/null 2>&1 \
        || ! command -v arm-none-eabi-nm >/dev/null 2>&1; then
        log "installing binutils-arm-none-eabi with apt-get"
        as_root apt-get update >&2
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends binutils-arm-none-eabi >&2
    fi
    SIZE=$(command -v arm-none-eabi-size) NM=$(command -v arm-none-eabi-nm)
}

build() { # opt variant -> path of a copy of the ELF
    local opt=$1 variant=$2 profile=${PROFILE[$1]} features=()
    [[ -z ${FEATURES[$variant]} ]] || features=(--features "${FEATURES[$variant]}")
    cargo build --quiet --profile "$profile" --target "$TARGET" --target-dir "$TARGET_DIR" \
        "${features[@]}" >&2
    mkdir -p "$OUT"
    cp "$TARGET_DIR/$TARGET/$profile/flash-probe" "$OUT/$opt-$variant.elf"
    echo "$OUT/$opt-$variant.elf"
}

sections() { # elf -> ".text .rodata .data .bss" sizes in bytes
    "$SIZE" -A -d "$1" | awk '
        $1 == ".text" { t = $2 } $1 == ".rodata" { r = $2 }
        $1 == ".data" { d = $2 } $1 == ".bss" { b = $2 }
        END { print t + 0, r + 0, d + 0, b + 0 }'
}

# Rust legacy mangling that the demangler leaves behind: $LT$ -> <, ..  -> ::, hash suffixes.
tidy_symbols() {
    sed -E -e 's/\$LT\$/</g; s/\$GT\$/>/g; s/\$C\$/,/g; s/\$u20\$/ /g; s/\$RF\$/\&/g' \
        -e 's/\$BP\$/*/g; s/\$u27\$/'"'"'/g; s/\$u5b\$/[/g; s/\$u5d\$/]/g; s/\$u7b\$/{/g' \
        -e 's/\$u7d\$/}/g; s/\$u3b\$/;/g; s/\$u2b\$/+/g; s/\$u22\$/"/g; s/\.\./::/g' \
        -e 's/(^|[ <&*,])_</\1</g; s/::h[0-9a-f]{16}$//'
}

version_of() { # crate -> version in Cargo.lock
    awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' \
        Cargo.lock
}

ensure_target
find_tools

declare -A ELF
for opt in "${OPTS[@]}"; do
    for variant in "${VARIANTS[@]}"; do
        log "building $variant at opt-level $opt"
        ELF[$opt-$variant]=$(build "$opt" "$variant")
    done
done

echo "flash-probe: $TARGET, $(rustc --version)"
echo "cortex-m-rt $(version_of cortex-m-rt), panic-halt $(version_of panic-halt)," \
    "jwt-refresh $(version_of jwt-refresh) (path ../..), serde-json-core" \
    "$(version_of serde-json-core), base64 $(version_of base64)"
echo "sizes by $SIZE ($("$SIZE" --version | grep -m1 -oE '(LLVM version|GNU size).*'))"
echo "lto = true, codegen-units = 1, panic = abort (panic-halt); delta = .text+.rodata - baseline"
echo
printf '| %-3s | %-12s | %6s | %7s | %5s | %4s | %11s | %7s |\n' \
    opt variant .text .rodata .data .bss text+rodata delta
printf '|-----|--------------|-------:|--------:|------:|-----:|------------:|--------:|\n'
for opt in "${OPTS[@]}"; do
    base=
    for variant in "${VARIANTS[@]}"; do
        read -r text rodata data bss < <(sections "${ELF[$opt-$variant]}")
        flash=$((text + rodata))
        [[ -n $base ]] || base=$flash
        printf '| %-3s | %-12s | %6d | %7d | %5d | %4d | %11d | %+7d |\n' \
            "$opt" "$variant" "$text" "$rodata" "$data" "$bss" "$flash" $((flash - base))
    done
done

echo
echo "Top $TOP symbols of the decode variant (opt-level z), bytes, vector table left out:"
"$NM" --size-sort --print-size --radix=d -C "${ELF[z-decode]}" |
    awk '$3 !~ /^[bBdD]$/ && $4 != "__INTERRUPTS" && $4 != "__EXCEPTIONS"' |
    tail -n "$TOP" | sort -k2,2nr |
    awk '{ size = $2 + 0; $1 = $2 = ""; sub(/^ +/, ""); printf "%6d  %s\n", size, $0 }' |
    tidy_symbols
