#!/usr/bin/env bash
# Flash, RAM and stack report of the jwt-refresh firmware, checked against ./budget.
#
# Builds four images of the firmware at opt-level "z" (profile release) and "s" (profile
# release-s):
#   full           the crate's calls, and the firmware's own JSON and base64 telemetry
#                  (serde-json-core and base64 for its own data, src/telemetry.rs): what CI runs
#   no-libs        the crate's calls, no telemetry                       (feature no-libs)
#   baseline-libs  no call into the crate, the telemetry                 (feature baseline-libs)
#   baseline       no call into the crate, no telemetry                  (feature baseline)
# and reports .text, .rodata, .data and .bss of each, and flash = .text + .rodata + .data of:
#   crate             = no-libs - baseline: the whole crate, serde-json-core, base64 and the
#                       core code they pull in included (a firmware that does not use them)
#   crate over libs   = full - baseline-libs: what the crate adds to a firmware that already
#                       links serde-json-core and base64 for its own data
#   (and, for information, what the telemetry itself costs with and without the crate).
# Then it runs both full images under QEMU for the painted-stack figures (Client::send, the
# claims decoders on flat, escaped and nested-to-the-limit payloads) and size_of values, lists
# the largest symbols of the crate and its libraries and the largest stack frames, compares
# with ./budget and shows how far each figure is from its goal. Exits 1 when a figure is over
# its budget (or a run fails), 0 otherwise; a missed goal alone does not fail.
#
# Usage: examples/firmware/size-report.sh            (from anywhere)
# Environment:
#   SIZE_TOOLS=gnu   use binutils-arm-none-eabi instead of rustup's llvm-tools
#   TOP=20           how many symbols and frames to list
#   QEMU_TIMEOUT=60  seconds allowed for each QEMU run
#   EXTRA_FEATURES=panic-location   features added to every image, for comparison (./budget
#                    holds for the images without: panic-location adds ~6.8 KB to the crate)
# Needs: the thumbv7m-none-eabi target, qemu-system-arm, and llvm-tools or
# binutils-arm-none-eabi (ci.sh installs them all).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
TARGET=thumbv7m-none-eabi
TOP=${TOP:-20}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-60}
EXTRA_FEATURES=${EXTRA_FEATURES:-}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
OUT=$TARGET_DIR/size-report
OPTS=(z s)
declare -A PROFILE=([z]=release [s]=release-s)
IMAGES=(full no-libs baseline-libs baseline)
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
    local opt=$1 variant=$2 features=() list=$EXTRA_FEATURES
    [[ $variant == full ]] || list=$variant${list:+,$list}
    [[ -z $list ]] || features=(--features "$list")
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

max() { # a b -> the larger
    echo $(($1 > $2 ? $1 : $2))
}

measure() { # output file, key -> value of "measure key=value"
    grep -m1 -oE "measure $2=[0-9]+" "$1" | cut -d= -f2
}

budget() { # key -> value from ./budget
    awk -F= -v key="$1" '$1 == key { gsub(/[^0-9]/, "", $2); print $2; exit }' budget
}

find_tools
command -v qemu-system-arm >/dev/null || { log "qemu-system-arm is not installed"; exit 2; }

for opt in "${OPTS[@]}"; do
    for image in "${IMAGES[@]}"; do
        build "$opt" "$image"
    done
done

failed=0
declare -A FLASH DATA BSS CRATE LIBS
echo "jwt-refresh firmware size report: $TARGET (Cortex-M3), $(rustc --version)"
echo "lto = true, codegen-units = 1, panic = abort; flash = .text + .rodata + .data${EXTRA_FEATURES:+;}"
[[ -z $EXTRA_FEATURES ]] || echo "every image with the features $EXTRA_FEATURES (./budget is for none)"
echo
printf '| opt | image         |  .text | .rodata | .data |  .bss |  flash |\n'
printf '|-----|---------------|-------:|--------:|------:|------:|-------:|\n'
for opt in "${OPTS[@]}"; do
    for image in "${IMAGES[@]}"; do
        read -r t r d b < <(sections "$OUT/$opt-$image.elf")
        FLASH[$opt-$image]=$((t + r + d))
        DATA[$opt-$image]=$d BSS[$opt-$image]=$b
        printf '| %-3s | %-13s | %6d | %7d | %5d | %5d | %6d |\n' \
            "$opt" "$image" "$t" "$r" "$d" "$b" "${FLASH[$opt-$image]}"
    done
    CRATE[$opt]=$((FLASH[$opt-no-libs] - FLASH[$opt-baseline]))
    LIBS[$opt]=$((FLASH[$opt-full] - FLASH[$opt-baseline-libs]))
done
echo
echo "Flash the crate adds (bytes):"
printf '| opt | crate (no-libs - baseline) | crate over libs (full - baseline-libs) | telemetry alone (baseline-libs - baseline) | telemetry next to the crate (full - no-libs) |\n'
printf '|-----|---------------------------:|---------------------------------------:|-------------------------------------------:|---------------------------------------------:|\n'
for opt in "${OPTS[@]}"; do
    printf '| %-3s | %26d | %38d | %42d | %44d |\n' "$opt" "${CRATE[$opt]}" "${LIBS[$opt]}" \
        $((FLASH[$opt-baseline-libs] - FLASH[$opt-baseline])) \
        $((FLASH[$opt-full] - FLASH[$opt-no-libs]))
done
echo "crate: the whole crate, serde-json-core, base64 and the core code they pull in included;"
echo "crate over libs: on top of a firmware that already uses serde-json-core (to_slice,"
echo "from_slice) and base64 (decode_slice, encode_slice) for its own data (src/telemetry.rs)."

echo
# The stack figures of each opt-level's run: measure key -> value, as M[<opt>-<key>].
STACK_KEYS=(stack_client_peak stack_harness_peak stack_claims_decode_peak
    stack_claims_decode_escaped_peak stack_claims_decode_deep_arrays_peak
    stack_claims_decode_deep_objects_peak stack_claims_decode_half_arrays_peak
    stack_claims_decode_deep_peak stack_claims_decode_per_level stack_time_claims_decode_peak
    stack_time_claims_decode_deep_arrays_peak stack_time_claims_decode_deep_objects_peak
    max_depth)
declare -A M
for opt in "${OPTS[@]}"; do
    output=$OUT/$opt-run.txt
    status=0
    run_qemu "$OUT/$opt-full.elf" "$output" || status=$?
    if [[ $status != 0 ]] || ! grep -q '^PASS' "$output"; then
        log "the opt-level $opt firmware failed under QEMU (exit $status):"
        tail -n 20 "$output" >&2
        failed=1
    fi
    for key in "${STACK_KEYS[@]}"; do
        M[$opt-$key]=$(measure "$output" "$key")
    done
done
z_run=$OUT/z-run.txt
echo "RAM at opt-level z: .data + .bss = $((DATA[z-full] + BSS[z-full])) bytes of statics (baseline:"
echo "$((DATA[z-baseline] + BSS[z-baseline])); the firmware keeps its clients and buffers on the stack);"
echo "size_of on $TARGET:"
for key in size_session_default size_session_small size_client_default size_claims \
    size_time_claims; do
    printf '  %-22s %6s bytes\n' "$key" "$(measure "$z_run" "$key")"
done
echo "Peak stack below the caller's frame, bytes (the claims decoders with their default 1 KiB"
echo "scratch; nested: unknown arrays or objects ${M[z-max_depth]:-?} levels deep, the crate's MAX_DEPTH):"
printf '| opt | Client::send | harness alone | Claims::decode flat | escaped + aud | nested arrays | nested objects | half as deep | per level | TimeClaims flat | TimeClaims nested |\n'
printf '|-----|-------------:|--------------:|--------------------:|--------------:|--------------:|---------------:|-------------:|----------:|----------------:|------------------:|\n'
for opt in "${OPTS[@]}"; do
    printf '| %-3s | %12s | %13s | %19s | %13s | %13s | %14s | %12s | %9s | %15s | %17s |\n' "$opt" \
        "${M[$opt-stack_client_peak]:-?}" "${M[$opt-stack_harness_peak]:-?}" \
        "${M[$opt-stack_claims_decode_peak]:-?}" "${M[$opt-stack_claims_decode_escaped_peak]:-?}" \
        "${M[$opt-stack_claims_decode_deep_arrays_peak]:-?}" \
        "${M[$opt-stack_claims_decode_deep_objects_peak]:-?}" \
        "${M[$opt-stack_claims_decode_half_arrays_peak]:-?}" \
        "${M[$opt-stack_claims_decode_per_level]:-?}" "${M[$opt-stack_time_claims_decode_peak]:-?}" \
        "$(max "${M[$opt-stack_time_claims_decode_deep_arrays_peak]:-0}" \
            "${M[$opt-stack_time_claims_decode_deep_objects_peak]:-0}")"
done
echo "A token endpoint can hand the session such an access token: Client::send decodes it with"
echo "TimeClaims::decode, so its peak could grow by up to TimeClaims nested - TimeClaims flat."

echo
echo "Largest jwt-refresh, serde-json-core, base64 and heapless symbols in the opt-level z no-libs"
echo "image (bytes; code inlined into the firmware's own functions, such as Client::send in"
echo "script::send, is not listed here: see attribute.py):"
"$NM" --size-sort --print-size --radix=d -C "$OUT/z-no-libs.elf" |
    awk '$3 ~ /^[tTrR]$/' | grep -E 'jwt_refresh::|serde_json_core::|base64::|heapless::' |
    tail -n "$TOP" | sort -k2,2nr |
    awk '{ size = $2 + 0; $1 = $2 = $3 = ""; sub(/^ +/, ""); printf "%6d  %s\n", size, $0 }' | tidy

echo
echo "Largest stack frames in the opt-level z full image (pushes + locals, bytes):"
# `awk 'NR <= n'` reads to the end: `head` would close the pipe early, and under pipefail
# the SIGPIPE that `sort` then gets fails the report now and then.
frames "$OUT/z-full.elf" | sort -k1,1nr | awk -v n="$TOP" 'NR <= n' | tidy |
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
for opt in "${OPTS[@]}"; do
    check "crate flash, opt-level $opt" "${CRATE[$opt]}" "crate_flash_$opt"
done
for opt in "${OPTS[@]}"; do
    check "crate flash over the libs, opt-level $opt" "${LIBS[$opt]}" "crate_flash_over_libs_$opt"
done
for opt in "${OPTS[@]}"; do
    check "Client::send stack, opt-level $opt" "${M[$opt-stack_client_peak]:-}" "stack_client_$opt"
done
for opt in "${OPTS[@]}"; do
    check "Claims::decode stack, flat, opt-level $opt" \
        "${M[$opt-stack_claims_decode_peak]:-}" "stack_claims_decode_$opt"
done
for opt in "${OPTS[@]}"; do
    check "Claims::decode stack, nested, opt-level $opt" \
        "${M[$opt-stack_claims_decode_deep_peak]:-}" "stack_claims_decode_deep_$opt"
done

echo
echo "Goals (./budget, opt-level z; a missed goal does not fail the report):"
goal() { # label, measured, goal key
    local limit
    limit=$(budget "$3")
    if [[ -z $2 || -z $limit ]]; then
        printf '  %-40s %8s / %-8s ?\n' "$1" "${2:-?}" "${limit:-?}"
    elif (($2 > limit)); then
        printf '  %-40s %8d / %-8d missed by %d bytes\n' "$1" "$2" "$limit" $(($2 - limit))
    else
        printf '  %-40s %8d / %-8d met (%d to spare)\n' "$1" "$2" "$limit" $((limit - $2))
    fi
}
goal "crate flash" "${CRATE[z]}" goal_crate_flash_z
goal "crate flash over the libs" "${LIBS[z]}" goal_crate_flash_over_libs_z
goal "Client::send stack" "${M[z-stack_client_peak]:-}" goal_stack_client_z
goal "Claims::decode stack, flat" "${M[z-stack_claims_decode_peak]:-}" goal_stack_claims_decode_z
goal "Claims::decode stack, nested" "${M[z-stack_claims_decode_deep_peak]:-}" \
    goal_stack_claims_decode_z
# The deepest nesting that keeps Claims::decode within its stack goal, a level costing what
# the run measured (the nested payloads, less one level each).
stack_goal=$(budget goal_stack_claims_decode_z)
deep=${M[z-stack_claims_decode_deep_peak]:-} level=${M[z-stack_claims_decode_per_level]:-}
depth=${M[z-max_depth]:-} flat=${M[z-stack_claims_decode_peak]:-}
if [[ -n $stack_goal && -n $deep && -n $level && -n $depth && -n $flat && $level -gt 0 ]]; then
    # The nested payload at depth d peaks at about deep - (depth - d) * level.
    fits=$((depth - (deep - stack_goal + level - 1) / level))
    ((deep <= stack_goal)) && fits=$depth
    if ((flat > stack_goal)); then
        echo "  MAX_DEPTH: ${level} bytes a level; no depth keeps Claims::decode within $stack_goal:"
        echo "    the flat payload alone needs $flat"
    elif ((fits < 1)); then
        echo "  MAX_DEPTH: ${level} bytes a level; no depth keeps the nested payload within $stack_goal"
    else
        echo "  MAX_DEPTH: ${level} bytes a level; at most $fits keeps Claims::decode within $stack_goal" \
            "(now $depth)"
    fi
fi
if [[ $failed != 0 ]]; then
    echo "size-report: FAILED"
    exit 1
fi
echo "size-report: within budget"
