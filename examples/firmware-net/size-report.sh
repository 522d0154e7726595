#!/usr/bin/env bash
# Flash and RAM of examples/firmware-net, and what jwt-refresh adds to a firmware that already
# has embassy, embassy-net and reqwless, checked against ./budget.
#
# Builds two images (release: opt-level z, LTO, one codegen unit, panic = abort):
#   full       the firmware as run.sh runs it: AsyncClient over ReqwlessTransport
#   baseline   the same without any call into jwt-refresh (feature `baseline`, src/baseline.rs):
#              plain reqwless GETs, the store read once; network stack, timers, glue the same
# and prints, for each, flash (.text + .rodata + .eh_frame + .init.rust; .data is empty) and
# static RAM (.data + .bss), then full - baseline: the crate's share (its session, protocol,
# claims decoder, async client and reqwless adapter, and the serde-json-core, base64 and core
# code they pull in). Then the full image's symbols by crate, from their sizes (`llvm-nm`):
# with LTO much of the crate is inlined into the firmware's main task, which is why the
# difference of the two images is the figure that counts. Exits 1 when a figure is over ./budget.
#
# Usage: bash examples/firmware-net/size-report.sh     (from anywhere)
# Needs: the riscv32imac-unknown-none-elf target and rustup's llvm-tools (installed if missing).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
TARGET=riscv32imac-unknown-none-elf
export CARGO_TERM_COLOR=never
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$HERE/target}")
export CARGO_TARGET_DIR=$TARGET_DIR
OUT=$TARGET_DIR/size-report
mkdir -p "$OUT"

rustup component add llvm-tools >/dev/null 2>&1 || rustup component add llvm-tools-preview >/dev/null
BIN="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"

cargo build --quiet --release
cp "$TARGET_DIR/$TARGET/release/jwt-refresh-firmware-net" "$OUT/full.elf"
cargo build --quiet --release --features baseline
cp "$TARGET_DIR/$TARGET/release/jwt-refresh-firmware-net" "$OUT/baseline.elf"

python3 - "$BIN" "$OUT" "$HERE/budget" <<'PYEOF'
import collections, os, re, subprocess, sys

bin_dir, out, budget_path = sys.argv[1:]
FLASH = (".text", ".rodata", ".eh_frame", ".init.rust", ".data")
RAM = (".data", ".bss", ".uninit")


def sections(elf):
    text = subprocess.run([os.path.join(bin_dir, "llvm-size"), "-A", elf], check=True,
                          capture_output=True, text=True).stdout
    sizes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


full, base = sections(f"{out}/full.elf"), sections(f"{out}/baseline.elf")
figures = {}
for name, keys in (("flash", FLASH), ("ram", RAM)):
    figures[name] = (sum(full.get(k, 0) for k in keys), sum(base.get(k, 0) for k in keys))
stack = full.get(".stack", 0)

print("examples/firmware-net, riscv32imac-unknown-none-elf, opt-level z, LTO, panic = abort")
print(f"{'':44}{'full':>10}{'baseline':>10}{'crate adds':>12}")
for name, label in (("flash", "flash (.text .rodata .eh_frame .init .data)"),
                    ("ram", "static RAM (.data .bss)")):
    f, b = figures[name]
    print(f"{label:44}{f:>10,}{b:>10,}{f - b:>12,}")
print(f"memory.x: FLASH 1 MiB ({figures['flash'][0] / (1 << 20):.1%} used), RAM 256 KiB "
      f"({figures['ram'][0] / (256 << 10):.1%} static; the stack has the other {stack:,} B)")

# Symbols of the full image by crate (the first crate named in each symbol's name).
CRATES = ["jwt_refresh_firmware_net", "jwt_refresh", "embassy_net", "smoltcp", "reqwless",
          "httparse", "virtio_drivers", "embassy_executor", "embassy_time", "embassy_sync",
          "serde_json_core", "serde", "base64", "heapless", "semihosting", "riscv_rt", "riscv",
          "compiler_builtins", "core", "zerocopy", "static_cell"]
pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(CRATES) + r")(?:::|\.\.)")
nm = subprocess.run([os.path.join(bin_dir, "llvm-nm"), "--print-size", "--size-sort", "-C",
                     f"{out}/full.elf"], check=True, capture_output=True, text=True).stdout
by_crate = collections.Counter()
for line in nm.splitlines():
    parts = line.split(None, 3)
    if len(parts) < 4 or parts[2].lower() not in ("t", "r"):
        continue
    m = pattern.search(parts[3])
    by_crate[m.group(1) if m else "(anonymous constants, embedded-io-async, others)"] += int(parts[1], 16)
print("flash by symbol, full image (inlined code counts for its caller):")
print("  " + ", ".join(f"{c} {n:,}" for c, n in by_crate.most_common()))

budget = {}
with open(budget_path, encoding="utf-8") as f:
    for line in f:
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = line.split("=")
            budget[key.strip()] = int(value)
over = []
checks = {"crate_flash": figures["flash"][0] - figures["flash"][1],
          "crate_ram": figures["ram"][0] - figures["ram"][1],
          "firmware_flash": figures["flash"][0], "firmware_ram": figures["ram"][0]}
for key, value in checks.items():
    limit = budget[key]
    print(f"budget {key}: {value:,} of {limit:,}")
    if value > limit:
        over.append(f"{key} {value:,} > {limit:,}")
if over:
    print("OVER BUDGET: " + "; ".join(over))
    sys.exit(1)
PYEOF
