"""Checks the two commands at the top of README.md as a new user would run them.

The first fenced block of README.md holds exactly two commands: the main job, then the whole
test suite. The main job is run here and must exit 0; the test command must appear, as a line
of its own, in .ci/run (which runs it).
"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
readme = (root / "README.md").read_text(encoding="utf-8")
block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
if not block or readme.index(block.group(0)) > 1500:
    sys.exit("README.md must open with a fenced block holding the two commands")
commands = [line.strip() for line in block.group(1).splitlines()
            if line.strip() and not line.strip().startswith("#")]
if len(commands) != 2:
    sys.exit(f"expected two commands at the top of README.md, found {commands}")
main_job, test_command = commands

ci_lines = {line.strip() for line in (root / ".ci" / "run").read_text().splitlines()}
if test_command not in ci_lines:
    sys.exit(f"README's test command {test_command!r} is not a line of .ci/run")

print(f"$ {main_job}", flush=True)
done = subprocess.run(main_job, shell=True, cwd=root, timeout=600)
if done.returncode != 0:
    sys.exit(f"README's first command exited {done.returncode}")
print("README commands: ok")
