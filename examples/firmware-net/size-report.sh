#!/usr/bin/env bash
# Flash and RAM of examples/firmware-net, and what jwt-refresh adds to a firmware that already
# has embassy, embassy-net and reqwless, checked against ./budget.
#
# Builds two images (release: opt-level z, LTO, one codegen unit, panic = abort):
#   full       the firmware as run.sh runs it: AsyncClient over ReqwlessTransport
#   baseline   the same without any call into jwt-refresh (feature `baseline`, src/baseline.rs):
#              plain reqwless GETs, the store read once; network stack, timers, glue the same
# and prints, for each, flash (.text + .rodata + .init.rust; .data is empty; memory.x discards
# the unwind tables) and static RAM (the objects in .data and .bss, by symbol size: the DMA
# pool's 4 KiB alignment pads the sections in 4 KiB steps), then full - baseline: the crate's
# share (its session, protocol, claims decoder, async client and reqwless adapter, and the
# serde-json-core, base64 and core code they pull in). Exits 1 when a figure is over ./budget. Then attribute.py charges every
# instruction of each image's .text to the crate of its innermost (inlined) function: the
# crates' shares of the code, jwt-refresh's among them (fails if it finds none), and what
# reqwless brings without the crate (its second base64 among them).
#
# Usage: bash examples/firmware-net/size-report.sh     (from anywhere)
# Needs: the riscv32imac-unknown-none-elf target, rustup's llvm-tools (installed if missing) and
# binutils-riscv64-unknown-elf for attribute.py (run.sh installs it).
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
FLASH = (".text", ".rodata", ".init.rust", ".data")  # memory.x discards .eh_frame
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


def static_ram(elf):
    """The sizes of the objects in .data and .bss: the DMA pool's 4 KiB alignment makes the
    sections grow in 4 KiB steps, the objects do not."""
    text = subprocess.run([os.path.join(bin_dir, "llvm-nm"), "--print-size", elf], check=True,
                          capture_output=True, text=True).stdout
    spans = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "bBdD":
            start = int(parts[0], 16)
            spans.append((start, start + int(parts[1], 16)))
    # The bytes covered, each once (LLVM's merged globals overlap their members' symbols).
    total, end = 0, 0
    for start, stop in sorted(spans):
        start = max(start, end)
        if stop > start:
            total += stop - start
            end = stop
    return total


full, base = sections(f"{out}/full.elf"), sections(f"{out}/baseline.elf")
figures = {"flash": (sum(full.get(k, 0) for k in FLASH), sum(base.get(k, 0) for k in FLASH)),
           "ram": (static_ram(f"{out}/full.elf"), static_ram(f"{out}/baseline.elf"))}
sections_ram = (sum(full.get(k, 0) for k in RAM), sum(base.get(k, 0) for k in RAM))
stack = full.get(".stack", 0)

print("examples/firmware-net, riscv32imac-unknown-none-elf, opt-level z, LTO, panic = abort")
print(f"{'':44}{'full':>10}{'baseline':>10}{'crate adds':>12}")
for label, (f, b) in (("flash (.text .rodata .init .data)", figures["flash"]),
                      ("static RAM (objects in .data .bss)", figures["ram"]),
                      ("  .data + .bss sections, padding included", sections_ram)):
    print(f"{label:44}{f:>10,}{b:>10,}{f - b:>12,}")
print(f"memory.x: FLASH 1 MiB ({figures['flash'][0] / (1 << 20):.1%} used), RAM 256 KiB "
      f"({sections_ram[0] / (256 << 10):.1%} static; the stack has the other {stack:,} B)")

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

command -v riscv64-unknown-elf-addr2line >/dev/null || {
  echo "size-report: attribute.py needs binutils-riscv64-unknown-elf (apt-get install --no-install-recommends binutils-riscv64-unknown-elf)" >&2
  exit 1
}
python3 "$HERE/attribute.py" --check
python3 "$HERE/attribute.py" --baseline
