"""Checks the fleet simulation's JSON lines (stdin): the crate never sends an expired token, and
with its defaults the token endpoint's peak after a mass provisioning stays within 2x the steady
mean. The simulation is seeded, so these figures are deterministic."""
import json
import sys

runs = {}
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        run = json.loads(line)
        runs[(run["policy"], run["scenario"])] = run
expected = {(p, s) for p in ("default", "fixed-300s", "no-jitter")
            for s in ("provisioning", "outage", "steady")}
missing = expected - set(runs)
if missing:
    sys.exit(f"fleet: missing runs {sorted(missing)}")
for (policy, scenario), run in runs.items():
    if policy != "fixed-300s" and run["expired_sends"] != 0:
        sys.exit(f"fleet: {policy}/{scenario} sent {run['expired_sends']} expired tokens")
steady = runs[("default", "steady")]["mean_rps"]
peak = runs[("default", "provisioning")]["peak_rps"]
if peak > 2 * steady:
    sys.exit(f"fleet: provisioning peak {peak}/s is over 2x the steady mean {steady}/s")
print(f"fleet: 9 runs; no expired sends; provisioning peak {peak}/s = "
      f"{peak / steady:.2f}x the steady mean {steady}/s")
