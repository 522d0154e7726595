#!/usr/bin/env python3
"""Whose code the firmware's flash is, inlined code included.

`llvm-nm` symbol sizes see only the functions that survived inlining: with LTO, most of
`AsyncClient::send` lives inside the firmware's main task. This script builds the same image as
`cargo build --release` (opt-level z) with debug line tables, which do not change the code,
disassembles it, asks `addr2line -i` for the inline chain of every instruction, and charges each
instruction's bytes to the crate whose source holds the innermost function: jwt-refresh's `src/`,
a dependency under cargo's registry (by package name), the firmware's own `src/`, or Rust's
`core` / `compiler_builtins`. Prints the bytes per crate, and jwt-refresh's per source file.

Usage: python3 examples/firmware-net/attribute.py [--baseline] [--check]
Needs: binutils-riscv64-unknown-elf (`apt-get install --no-install-recommends
binutils-riscv64-unknown-elf`: rustup's llvm-tools has no addr2line; its objdump and addr2line
read rv32 images) and the riscv32imac-unknown-none-elf target.
A crate linked in two versions (base64 0.21 for reqwless, 0.22 for jwt-refresh) is shown per
version. --baseline: the image without jwt-refresh (feature `baseline`). --check: exit 1 when no
code is charged to jwt-refresh (the attribution found nothing of it; not with --baseline).
"""

import collections
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
CRATE_SRC = os.path.realpath(os.path.join(HERE, "..", "..", "src")) + os.sep
FIRMWARE_SRC = os.path.join(HERE, "src") + os.sep
TARGET = "riscv32imac-unknown-none-elf"
PREFIX = "riscv64-unknown-elf-"
REGISTRY = re.compile(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-(\d+\.\d+\.\d+[^/]*)/")
RUSTLIB = re.compile(r"/(?:rustc/[0-9a-f]+|lib/rustlib/src/rust)/library/([a-z_]+)/")


def owner(location):
    """The crate (name, version) whose source file `location` (path:line) is in; None when
    unknown."""
    if location.startswith(CRATE_SRC):
        return ("jwt-refresh", "")
    if location.startswith(FIRMWARE_SRC):
        return ("firmware (glue and app)", "")
    m = REGISTRY.search(location)
    if m:
        return (m.group(1), m.group(2))
    m = RUSTLIB.search(location)
    if m:
        return (m.group(1), "")
    return None


def main() -> None:
    check = "--check" in sys.argv[1:]
    baseline = "--baseline" in sys.argv[1:]
    target_dir = os.path.join(HERE, "target", "attribute")
    env = dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="2")
    features = ["--features", "baseline"] if baseline else []
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target-dir", target_dir]
                   + features, cwd=HERE, env=env, check=True)
    elf = os.path.join(target_dir, TARGET, "release", "jwt-refresh-firmware-net")

    disassembly = subprocess.run([PREFIX + "objdump", "-d", "--no-show-raw-insn", elf],
                                 capture_output=True, text=True, check=True).stdout
    addresses = sorted({int(m.group(1), 16)
                        for m in re.finditer(r"^\s*([0-9a-f]+):\s", disassembly, flags=re.M)})
    # An instruction's size is the distance to the next one (2 or 4 bytes with the C extension).
    sizes = {a: b - a for a, b in zip(addresses, addresses[1:]) if b - a <= 4}
    chains = subprocess.run(
        [PREFIX + "addr2line", "-e", elf, "-i", "-f", "-C", "-a"],
        input="".join(f"{a:#x}\n" for a in sizes), capture_output=True, text=True, check=True,
    ).stdout
    blocks = re.split(r"^0x[0-9a-f]+\n", chains, flags=re.M)[1:]

    by_crate = collections.Counter()
    by_file = collections.Counter()
    for address, block in zip(sizes, blocks):
        lines = block.strip().split("\n")
        crate = None
        for location in lines[1::2]:  # innermost first
            crate = owner(location)
            if crate:
                if crate[0] == "jwt-refresh":
                    by_file[location[len(CRATE_SRC):].split(":")[0]] += sizes[address]
                break
        by_crate[crate or ("(no line information)", "")] += sizes[address]

    versions = collections.defaultdict(set)
    for name, version in by_crate:
        versions[name].add(version)
    named = collections.Counter()
    for (name, version), size in by_crate.items():
        named[f"{name} {version}" if len(versions[name]) > 1 else name] += size
    by_crate = named
    total = sum(by_crate.values())
    image = "baseline image (no jwt-refresh)" if baseline else "full image"
    print(f"{image}: .text by the crate of the innermost function (inlined code included), "
          f"{total:,} B in all:")
    for crate, size in by_crate.most_common():
        print(f"{size:9,}  {size / total:6.1%}  {crate}")
    if by_file:
        print("jwt-refresh by source file:")
        for source, size in by_file.most_common():
            print(f"{size:9,}  {source}")
    if check and not baseline and by_crate["jwt-refresh"] == 0:
        sys.exit("attribute.py: no code was charged to jwt-refresh")


if __name__ == "__main__":
    main()
