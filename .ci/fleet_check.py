"""Checks the fleet simulation's JSON lines (stdin): the crate never sends an expired token, and
with its defaults the token endpoint's peak after a mass provisioning stays within 2x the steady
mean, its peak during a 10-minute outage within 3x, and its peak after that outage within 1.5x.
The simulation is seeded, so these figures are deterministic."""
import json
import sys

PROVISIONING_BOUND = 2.0
DURING_BOUND = 3.0
AFTER_BOUND = 1.5

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
if peak > PROVISIONING_BOUND * steady:
    sys.exit(f"fleet: provisioning peak {peak}/s is over {PROVISIONING_BOUND}x the steady mean "
             f"{steady}/s")
outage = runs[("default", "outage")]
during, after = outage.get("during_to_steady"), outage.get("after_to_steady")
if not isinstance(during, (int, float)) or not isinstance(after, (int, float)):
    sys.exit(f"fleet: the default outage run lacks during_to_steady / after_to_steady: {outage}")
if during > DURING_BOUND:
    sys.exit(f"fleet: the peak during the outage is {during}x the steady mean, over "
             f"{DURING_BOUND}x")
if after > AFTER_BOUND:
    sys.exit(f"fleet: the peak after the outage is {after}x the steady mean, over "
             f"{AFTER_BOUND}x")
print(f"fleet: {len(runs)} runs; no expired sends; with the defaults, provisioning peak {peak}/s "
      f"= {peak / steady:.2f}x the steady mean {steady}/s; outage peaks {during}x during, "
      f"{after}x after")
