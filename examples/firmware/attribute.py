#!/usr/bin/env python3
"""Where the crate's flash goes, inlined code included.

`nm --size-sort` (size-report.sh) sees only the functions that survived inlining: with LTO,
most of `Client::send` lives inside the firmware's `script::send`. This script builds the
opt-level z firmware with debug line tables (which do not change the code), disassembles it,
asks `addr2line -i` for the inline chain of every instruction, and charges each instruction's
bytes to the innermost function whose source is in jwt-refresh's `src/`. It prints the totals
per crate function and per crate source file.

Usage: python3 examples/firmware/attribute.py [TOP]     (TOP: functions to list, default 40)
Needs: binutils-arm-none-eabi (`apt-get install --no-install-recommends binutils-arm-none-eabi`:
rustup's llvm-tools has no addr2line) and the thumbv7m-none-eabi target.
"""

import collections
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
CRATE_SRC = os.path.realpath(os.path.join(HERE, "..", "..", "src")) + os.sep
TARGET = "thumbv7m-none-eabi"


def main() -> None:
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    target_dir = os.path.join(HERE, "target", "attribute")
    env = dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="2")
    subprocess.run(
        ["cargo", "build", "--quiet", "--release", "--target", TARGET, "--target-dir", target_dir],
        cwd=HERE, env=env, check=True,
    )
    elf = os.path.join(target_dir, TARGET, "release", "jwt-refresh-firmware")

    disassembly = subprocess.run(
        ["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", elf],
        capture_output=True, text=True, check=True,
    ).stdout
    addresses = sorted(
        int(m.group(1), 16)
        for m in re.finditer(r"^\s+([0-9a-f]+):\s", disassembly, flags=re.M)
    )
    # An instruction's size is the distance to the next one (2 or 4 bytes in Thumb-2).
    sizes = {a: b - a for a, b in zip(addresses, addresses[1:]) if b - a <= 4}
    chains = subprocess.run(
        ["arm-none-eabi-addr2line", "-e", elf, "-i", "-f", "-C", "-a"],
        input="".join(f"{a:#x}\n" for a in sizes), capture_output=True, text=True, check=True,
    ).stdout
    blocks = re.split(r"^0x[0-9a-f]+\n", chains, flags=re.M)[1:]

    by_function = collections.Counter()
    by_file = collections.Counter()
    total = 0
    for address, block in zip(sizes, blocks):
        lines = block.strip().split("\n")
        for function, location in zip(lines[0::2], lines[1::2]):
            if location.startswith(CRATE_SRC):
                function = re.sub(r"::h[0-9a-f]{16}$", "", function)
                source = location[len(CRATE_SRC):].split(":")[0]
                by_function[f"{function}  [{source}]"] += sizes[address]
                by_file[source] += sizes[address]
                total += sizes[address]
                break

    print(f"{total} bytes of .text come from jwt-refresh's src/ (opt-level z, inlined code included;")
    print("compiler-builtins and core code the crate calls are not counted). By source file:")
    for source, size in by_file.most_common():
        print(f"{size:7d}  {source}")
    print(f"\nBy innermost crate function, top {top}:")
    for function, size in by_function.most_common(top):
        print(f"{size:7d}  {function}")


if __name__ == "__main__":
    main()
