#!/usr/bin/env bash
# Flash, RAM and stack report of the jwt-refresh firmware, checked against ./budget.
#
# Builds the firmware and its `baseline` (the same image without any call into jwt-refresh) at
# opt-level "z" (profile release) and "s" (profile release-s), prints .text, .rodata, .data and
# .bss of each and the flash the crate adds (text + rodata + data, minus the baseline's), runs
# both full images under QEMU for the painted-stack figures and size_of values, lists the
# crate's largest symbols and stack frames, then compares with ./budget. Exits 1 when a figure
# is over its budget (or a run fails), 0 otherwise.
#
# Usage: examples/firmware/size-report.sh            (from anywhere)
# Environment:
#   SIZE_TOOLS=gnu   use binutils-arm-none-eabi instead of rustup's llvm-tools
#   TOP=20           how many symbols and frames to list
#   QEMU_TIMEOUT=60  seconds allowed for each QEMU run
# Needs: the thumbv7m-none-eabi target, qemu-system-arm, and llvm-tools or
# binutils-arm-none-eabi (ci.sh installs them all).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
TARGET=thumbv7m-none-eabi
TOP=${TOP:-20}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-60}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
OUT=$TARGET_DIR/size-report
OPTS=(z s)
declare -A PROFILE=([z]=release [s]=release-s)
QEMU=(qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic
    -semihosting-config enable=on,target=native -kernel)

log() { echo "size-report: $*" >&2; }

# Sets SIZE, NM and OBJDUMP: rustup's llvm-tools, else Debian's binutils-arm-none-eabi.
find_tools() {
    if [[ ${SIZE_TOOLS:-} != gnu ]]; then
        local bin
        for bin in "$(rustc --print sysroot)"/lib/rustlib/*/bin; do
            if [[ -x $bin/llvm-size && -x $bin/llvm-nm && -x $bin/llvm-objdump ]]; then
                SIZE=$bin/llvm-size NM=$bin/llvm-nm OBJDUMP=$bin/llvm-objdump
                return
            fi
        done
    fi
    if command -v arm-none-eabi-size >/dev/null 2>&1; then
        SIZE=arm-none-eabi-size NM=arm-none-eabi-nm OBJDUMP=arm-none-eabi-objdump
        return
    fi
    log "no size tools: run 'rustup component add llvm-tools' or install binutils-arm-none-eabi"
    exit 2
}

build() { # opt variant -> copies the ELF to $OUT/<opt>-<variant>.elf
    local opt=$1 variant=$2 features=()
    [[ $variant == full ]] || features=(--features "$variant")
    log "building $variant at opt-level $opt"
    cargo build --quiet --profile "${PROFILE[$opt]}" --target "$TARGET" \
        --target-dir "$TARGET_DIR" "${features[@]}"
    mkdir -p "$OUT"
    cp "$TARGET_DIR/$TARGET/${PROFILE[$opt]}/jwt-refresh-firmware" "$OUT/$opt-$variant.elf"
}

sections() { # elf -> ".text .rodata .data .bss" in bytes (.bss includes .uninit)
    "$SIZE" -A -d "$1" | awk '
        $1 == ".text" { t = $2 } $1 == ".rodata" { r = $2 } $1 == ".data" { d = $2 }
        $1 == ".bss" || $1 == ".uninit" { b += $2 }
        END { print t + 0, r + 0, d + 0, b + 0 }'
}

# Rust legacy mangling left by the demangler ($LT$ -> <, .. -> ::) and hash suffixes.
tidy() {
    sed -E -e 's/\$LT\$/</g; s/\$GT\$/>/g; s/\$C\$/,/g; s/\$u20\$/ /g; s/\$RF\$/\&/g' \
        -e 's/\$BP\$/*/g; s/\$u27\$/'"'"'/g; s/\$u5b\$/[/g; s/\$u5d\$/]/g; s/\$u7b\$/{/g' \
        -e 's/\$u7d\$/}/g; s/\$u3b\$/;/g; s/\$u2b\$/+/g; s/\$u22\$/"/g; s/\.\./::/g' \
        -e 's/(^|[ <&*,])_</\1</g; s/::h[0-9a-f]{16}$//'
}

# Stack frame of every function (its pushes plus its `sub sp`), from the disassembly.
frames() { # elf -> "bytes name" lines
    "$OBJDUMP" -d --no-show-raw-insn -C "$1" | awk '
        function num(s,    i, n, c) {
            if (s !~ /^0x/) return s + 0
            n = 0
            for (i = 3; i <= length(s); i++) {
                c = index("0123456789abcdef", tolower(substr(s, i, 1)))
                if (c == 0) break
                n = n * 16 + c - 1
            }
            return n
        }
        function flush() { if (name != "") print pushed + locals, name }
        /^[0-9a-f]+ <.*>:$/ {
            flush(); name = $0; sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name)
            pushed = 0; locals = 0; next
        }
        /\tpush(\.w)?[ \t]+\{/ {
            regs = $0; sub(/.*\{/, "", regs); sub(/\}.*/, "", regs)
            pushed += 4 * split(regs, r, ",")
        }
        /\tsubw?(\.w)?[ \t]+sp, (sp, )?#/ {
            n = $0; sub(/.*#/, "", n); sub(/[^0-9a-fx].*/, "", n); locals += num(n)
        }
        END { flush() }'
}

run_qemu() { # elf -> output file; returns the firmware's exit status
    local status=0
    timeout "$QEMU_TIMEOUT" "${QEMU[@]}" "$1" >"$2" 2>/dev/null || status=$?
    return "$status"
}

measure() { # output file, key -> value of "measure key=value"
    grep -oE "measure $2=[0-9]+" "$1" | head -n1 | cut -d= -f2
}

budget() { # key -> value from ./budget
    awk -F= -v key="$1" '$1 == key { gsub(/[^0-9]/, "", $2); print $2; exit }' budget
}

find_tools
command -v qemu-system-arm >/dev/null || { log "qemu-system-arm is not installed"; exit 2; }

for opt in "${OPTS[@]}"; do
    build "$opt" full
    build "$opt" baseline
done

failed=0
declare -A FLASH CRATE DATA BSS STACK CLAIMS HARNESS
echo "jwt-refresh firmware size report: $TARGET (Cortex-M3), $(rustc --version)"
echo "lto = true, codegen-units = 1, panic = abort; flash = .text + .rodata + .data;"
echo "crate = full image - baseline image (the same firmware without the crate's calls)"
echo
printf '| opt | image    |  .text | .rodata | .data |  .bss |  flash |  crate |\n'
printf '|-----|----------|-------:|--------:|------:|------:|-------:|-------:|\n'
for opt in "${OPTS[@]}"; do
    read -r bt br bd bb < <(sections "$OUT/$opt-baseline.elf")
    read -r t r d b < <(sections "$OUT/$opt-full.elf")
    base=$((bt + br + bd))
    FLASH[$opt]=$((t + r + d))
    CRATE[$opt]=$((FLASH[$opt] - base))
    DATA[$opt]=$d BSS[$opt]=$b
    printf '| %-3s | %-8s | %6d | %7d | %5d | %5d | %6d | %6s |\n' \
        "$opt" baseline "$bt" "$br" "$bd" "$bb" "$base" ""
    printf '| %-3s | %-8s | %6d | %7d | %5d | %5d | %6d | %6d |\n' \
        "$opt" full "$t" "$r" "$d" "$b" "${FLASH[$opt]}" "${CRATE[$opt]}"
done

echo
for opt in "${OPTS[@]}"; do
    output=$OUT/$opt-run.txt
    status=0
    run_qemu "$OUT/$opt-full.elf" "$output" || status=$?
    if [[ $status != 0 ]] || ! grep -q '^PASS' "$output"; then
        log "the opt-level $opt firmware failed under QEMU (exit $status):"
        tail -n 20 "$output" >&2
        failed=1
    fi
    STACK[$opt]=$(measure "$output" stack_client_peak)
    CLAIMS[$opt]=$(measure "$output" stack_claims_decode_peak)
    HARNESS[$opt]=$(measure "$output" stack_harness_peak)
done
z_run=$OUT/z-run.txt
echo "RAM at opt-level z: .data + .bss = $((DATA[z] + BSS[z])) bytes of statics (the firmware keeps"
echo "its clients and buffers on the stack); size_of on $TARGET:"
for key in size_session_default size_session_small size_client_default size_claims \
    size_time_claims; do
    printf '  %-22s %6s bytes\n' "$key" "$(measure "$z_run" "$key")"
done
echo "Peak stack below the caller's frame (Client::send, the crate and the harness callbacks):"
for opt in "${OPTS[@]}"; do
    printf '  opt-level %s: client %s bytes, Claims::decode %s bytes (harness alone: %s)\n' \
        "$opt" "${STACK[$opt]:-?}" "${CLAIMS[$opt]:-?}" "${HARNESS[$opt]:-?}"
done

echo
echo "Largest jwt-refresh, base64 and heapless symbols in the opt-level z image (bytes; code"
echo "inlined into the firmware's own functions, such as Client::send in script::send, is not"
echo "listed here: see attribute.py):"
"$NM" --size-sort --print-size --radix=d -C "$OUT/z-full.elf" |
    awk '$3 ~ /^[tTrR]$/' | grep -E 'jwt_refresh::|base64::|heapless::' |
    tail -n "$TOP" | sort -k2,2nr |
    awk '{ size = $2 + 0; $1 = $2 = $3 = ""; sub(/^ +/, ""); printf "%6d  %s\n", size, $0 }' | tidy

echo
echo "Largest stack frames in the opt-level z image (pushes + locals, bytes):"
frames "$OUT/z-full.elf" | sort -k1,1nr | head -n "$TOP" | tidy |
    awk '{ size = $1; $1 = ""; printf "%6d %s\n", size, $0 }'

echo
echo "Budget (./budget):"
check() { # label, measured, budget key
    local limit
    limit=$(budget "$3")
    if [[ -z $2 || -z $limit ]]; then
        printf '  %-40s %8s / %-8s MISSING\n' "$1" "${2:-?}" "${limit:-?}"
        failed=1
    elif ((${2} > limit)); then
        printf '  %-40s %8d / %-8d OVER BUDGET by %d bytes\n' "$1" "$2" "$limit" $(($2 - limit))
        failed=1
    else
        printf '  %-40s %8d / %-8d ok (%d to spare)\n' "$1" "$2" "$limit" $((limit - $2))
    fi
}
check "crate flash, opt-level z" "${CRATE[z]}" crate_flash_z
check "crate flash, opt-level s" "${CRATE[s]}" crate_flash_s
check "peak stack below the caller, opt-level z" "${STACK[z]:-}" stack_client_z
check "peak stack below the caller, opt-level s" "${STACK[s]:-}" stack_client_s
check "Claims::decode stack, opt-level z" "${CLAIMS[z]:-}" stack_claims_decode_z
goal=$(budget goal_crate_flash_z)
if [[ -n $goal ]] && ((CRATE[z] > goal)); then
    echo "  (goal: the crate in at most $goal bytes at opt-level z; $((CRATE[z] - goal)) to cut)"
fi
if [[ $failed != 0 ]]; then
    echo "size-report: FAILED"
    exit 1
fi
echo "size-report: within budget"
