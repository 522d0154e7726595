#!/usr/bin/env python3
"""Checks the two firmware boots of run.sh against their output and the server's request log.

Usage: FWN_PASSWORD=PW check.py --api URL --log SERVER_LOG --dir WORKDIR --outage AFTER:COUNT
                [--lifetime 3]

WORKDIR holds boot1.out / boot2.out (the firmware's semihosting output: a `boot` line, one JSON
line per API request `{"i","status","refreshes","logins","us"}`, a `summary` line), boot1.err /
boot2.err (QEMU's stderr), boot1.pcap / boot2.pcap (the guest's frames, QEMU's filter-dump),
boot1.meta / boot2.meta (`start` / `end`: each boot's lines in SERVER_LOG as a half-open range;
`rc`, QEMU's exit status, which is the firmware's; `requests`; `interval_ms`) and
store-after-boot1.txt / store-after-boot2.txt (the device's store file after each boot).

Checked:
- Each boot exited 0, printed one line per request and a summary, and every API request was
  answered 200, by the firmware's account and by the server's, which saw exactly that many.
- No API request presented an expired access token (SimpleJWT rejects once now >= exp; LEEWAY
  0), or one not issued earlier by this server. The least life left is printed: the client uses
  a token until the end of the life it infers (exp - iat less the floored second, from the
  token request's send), so during the outage, when no refresh succeeds, a request near that end
  arrives with what the floored second and the token request's own latency leave: tenths of a
  second here. It would arrive expired only if the API request took longer to reach the server
  than the token request did, by more than that.
- No answer "Token is blacklisted"; every refresh (the outage's included) presented the newest
  refresh token issued before it, across both boots: no rotated token was ever presented again.
- Boot 1 logged in exactly once, first; boot 2 logged in 0 times, printed `"restored":true`,
  and its first token request was a refresh presenting the token boot 1 left in the store. Each
  store file holds the last refresh token issued in its boot.
- The outage: exactly COUNT refreshes of boot 1 were answered 503, all presenting the same,
  current refresh token; the next refresh presented that same token and got a new pair (the
  good token was kept), and the retries were spaced by the crate's backoff
  (RefreshPolicy::backoff_for), which follows the token's time scale: the first retry after a
  quarter to a half of the time the token still has (at least 0.25 s here, since a refresh is
  due with at least the 1 s margin left), later ones 0.75 s to 1.5 s apart for the 2 s life the
  crate infers from a 3 s SimpleJWT token. Checked: the first gap at least 0.2 s, later ones at
  least 0.7 s. The firmware sends every 250 ms, so a client that retried at every request would
  fail this.
- Successful refreshes per boot within the bounds of tests/interop/check.py (lower
  ceil(span / L) - 1; upper floor(span / 0.9) + 2 + short leases, far below the number of
  requests), tests/interop's exact schedule check on the successful token requests, and at
  least 4 access-token expiries covered by boot 1 (its span over 4 lifetimes).
- The firmware's output and QEMU's stderr hold no token and no password: none of the tokens
  the server issued (as logged), not the password (FWN_PASSWORD), and no text shaped like a JWT
  whose first segment is a JOSE header. Messages never quote a secret: they are redacted.
- The capture: every IPv4 packet the guest sent went to 10.0.2.100:8000 over TCP, and it asked
  ARP for no other address.
Prints the figures: token-endpoint requests per boot against one per token lifetime, per-request
time inside the emulator (information only, not asserted), the peak stack.
"""
import argparse
import base64
import json
import math
import os
import statistics
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "tests",
                                "interop"))
import check as interop  # noqa: E402  (tests/interop/check.py: log reading, lease inference)

PROTECTED, LOGIN, REFRESH = interop.PROTECTED, interop.LOGIN, interop.REFRESH
check, fail = interop.check, interop.fail
redact = None  # the Redactor, set in main()


GUEST, SERVER, SERVER_PORT = "10.0.2.15", "10.0.2.100", 8000


def token_like(text):
    """The JWT-shaped pieces of `text` whose first segment decodes to a JOSE header (with
    `alg`): tokens, not dotted names such as a file path."""
    found = []
    for m in interop.JWT_RE.finditer(text):
        head = m.group(0).split(".")[0]
        try:
            header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        except (ValueError, UnicodeError):
            continue
        if isinstance(header, dict) and "alg" in header:
            found.append(m.group(0))
    return found


class Redactor:
    """Replaces the secrets the checks know of, and anything token-like, in text that goes into
    a message: a check that finds a leak must not copy it into the CI log."""

    def __init__(self):
        self.secrets = {}  # secret -> what it is

    def add(self, secret, kind):
        if isinstance(secret, str) and len(secret) >= 8:
            self.secrets.setdefault(secret, kind)

    def __call__(self, text):
        text = str(text)
        for secret, kind in sorted(self.secrets.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(secret, f"<{kind}>")
        for token in token_like(text):
            text = text.replace(token, "<token>")
        return text

    def leaks(self, text):
        """What of the known secrets, and how many token-like pieces, `text` holds."""
        kinds = sorted({kind for secret, kind in self.secrets.items() if secret in text})
        return kinds, len(token_like(text))


def guest_traffic(path):
    """From a pcap of the guest's interface (QEMU's filter-dump): every ARP target and every
    (destination, port) of the IPv4 packets the guest sent, and the packets counted."""
    with open(path, "rb") as f:
        data = f.read()
    arp, dests, count = set(), set(), 0
    off = 24  # the global header
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        count += 1
        if len(pkt) < 14:
            continue
        ethertype = struct.unpack(">H", pkt[12:14])[0]
        if ethertype == 0x0806 and len(pkt) >= 42:
            if ".".join(map(str, pkt[28:32])) == GUEST:
                arp.add(".".join(map(str, pkt[38:42])))
        elif ethertype == 0x0800 and len(pkt) >= 34:
            src = ".".join(map(str, pkt[26:30]))
            dst = ".".join(map(str, pkt[30:34]))
            ihl = (pkt[14] & 15) * 4
            proto = pkt[23]
            port = (struct.unpack(">H", pkt[14 + ihl + 2:14 + ihl + 4])[0]
                    if proto in (6, 17) and len(pkt) >= 14 + ihl + 4 else None)
            if src == GUEST:
                dests.add((dst, proto, port))
    return arp, dests, count


def read_output(name, path):
    """The firmware's lines: (boot, rows, summary); None where malformed (already failed)."""
    boot, rows, summary = None, [], None
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            fail(f"{name}: output line {n} is not JSON: {redact(line[:200])!r}")
            continue
        if "fatal" in obj:
            fail(f"{name}: the firmware stopped: {redact(obj['fatal'])}")
        elif "boot" in obj:
            boot = obj["boot"]
        elif "summary" in obj:
            summary = obj["summary"]
        elif "i" in obj:
            rows.append(obj)
        else:
            fail(f"{name}: unexpected output line {n}: {redact(line[:200])!r}")
    return text, boot, rows, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--outage", required=True)
    ap.add_argument("--lifetime", type=int, default=3)
    args = ap.parse_args()
    global redact
    redact = Redactor()
    after, count = (int(x) for x in args.outage.split(":"))
    lifetime = args.lifetime
    entries = interop.load_log(args.log)
    redact.add(os.environ.get("FWN_PASSWORD"), "the password")
    for e in entries:
        for key in ("returned_refresh", "presented_refresh"):
            redact.add(e.get(key), "a refresh token")
        redact.add(e.get("returned_access"), "an access token")

    current = None          # the newest refresh token issued (jti), across both boots
    last_refresh = None     # ... and the token itself
    issued = set()          # access jtis issued so far
    refreshes_seen = 0      # refresh requests of the server's life (the outage counts these)
    for boot_no, name in enumerate(("boot1", "boot2"), 1):
        with open(os.path.join(args.dir, f"{name}.meta"), encoding="utf-8") as f:
            meta = json.load(f)
        run = sorted(entries[meta["start"]:meta["end"]], key=lambda e: e["t"])
        n = meta["requests"]
        protected = [e for e in run if e["path"] == PROTECTED]
        tokens = [e for e in run if e["path"] in (LOGIN, REFRESH) and e["method"] == "POST"]
        others = [e for e in run if e not in protected and e not in tokens]
        logins = [e for e in tokens if e["path"] == LOGIN]
        refreshes = [e for e in tokens if e["path"] == REFRESH]
        ok_refreshes = [e for e in refreshes if e["status"] == 200]

        text, boot, rows, summary = read_output(name, os.path.join(args.dir, f"{name}.out"))
        check(meta["rc"] == 0, f"{name}: QEMU exited {meta['rc']} (the firmware's status)")
        check(not others, f"{name}: unexpected requests "
              f"{[(e['method'], e['path'], e['status']) for e in others]}")
        check(len(rows) == n and [r["i"] for r in rows] == list(range(n)),
              f"{name}: {len(rows)} request lines for {n} requests")
        bad = [r for r in rows if r.get("status") != 200]
        check(not bad, f"{name}: requests without their 200: {redact(bad[:5])}")
        check(summary is not None and summary.get("ok") == n and summary.get("requests") == n,
              f"{name}: summary {redact(summary)}, expected {n} requests all ok")
        check(len(protected) == n, f"{name}: the server saw {len(protected)} API requests, "
              f"expected {n}")
        bad = [(k, e["status"]) for k, e in enumerate(protected) if e["status"] != 200]
        check(not bad, f"{name}: API requests not answered 200 (index, status): {bad}")
        expired = [(k, e.get("remaining")) for k, e in enumerate(protected)
                   if e.get("auth") != "bearer" or e.get("expired") is not False
                   or not isinstance(e.get("exp"), (int, float)) or e["t"] >= e["exp"]]
        check(not expired, f"{name}: API requests presenting an expired (or no) token "
              f"(index, exp - arrival): {expired}")
        listed = [(e["path"], e["status"]) for e in run if interop.blacklisted(e)]
        check(not listed, f"{name}: answers 'Token is blacklisted': {listed}")

        # Logins.
        if boot_no == 1:
            check(len(logins) == 1 and tokens and tokens[0]["path"] == LOGIN,
                  f"{name}: {len(logins)} logins, expected exactly 1, first")
        else:
            check(not logins, f"{name}: {len(logins)} logins after a reboot, expected 0")
            check(isinstance(boot, dict) and boot.get("restored") is True,
                  f"{name}: the boot line says {redact(boot)}, expected a restored refresh token")
            check(tokens and tokens[0]["path"] == REFRESH and
                  tokens[0].get("presented_refresh") == stored_after_boot1,
                  f"{name}: the first token request did not present the token boot 1 stored")

        # The chain, the outage, the access tokens used.
        outage = []
        for e in run:
            if e in tokens:
                if e["path"] == REFRESH:
                    refreshes_seen += 1
                    check(current is not None and e.get("presented_refresh_jti") == current,
                          f"{name}: a refresh presented {interop.short(e.get('presented_refresh_jti'))}"
                          f", the newest refresh token was {interop.short(current)}")
                    in_outage = after < refreshes_seen <= after + count
                    check((e["status"] == 503) == in_outage,
                          f"{name}: refresh {refreshes_seen} of the server answered {e['status']}"
                          f" ({'in' if in_outage else 'outside'} the outage)")
                    if e["status"] == 503:
                        outage.append(e)
                else:
                    check(e["status"] == 200, f"{name}: the login answered {e['status']}")
                if e["status"] == 200:
                    current = e.get("returned_refresh_jti") or current
                    last_refresh = e.get("returned_refresh") or last_refresh
                    if e.get("returned_access_jti"):
                        issued.add(e["returned_access_jti"])
            elif e in protected:
                check(e.get("jti") in issued, f"{name}: an API request presented access "
                      f"{interop.short(e.get('jti'))}, not issued earlier")
        if boot_no == 1:
            check(len(outage) == count, f"{name}: {len(outage)} refreshes answered 503, "
                  f"expected the outage's {count}")
            if outage:
                held = {e.get("presented_refresh_jti") for e in outage}
                after_outage = [e for e in refreshes if e["t"] > outage[-1]["t"]]
                check(len(held) == 1 and after_outage and after_outage[0]["status"] == 200 and
                      after_outage[0].get("presented_refresh_jti") in held,
                      f"{name}: the refresh after the outage did not present the kept token "
                      f"and get a new pair")
                gaps = [b["t"] - a["t"] for a, b in zip(outage, outage[1:] + after_outage[:1])]
                check(gaps and gaps[0] >= 0.2 and all(g >= 0.7 for g in gaps[1:]),
                      f"{name}: outage retries closer than the backoff allows (the first at "
                      f"least 0.2 s, later ones 0.7 s): gaps {[round(g, 2) for g in gaps]}")
                print(f"{name}: outage of {len(outage)} refreshes (503) ridden out; retry gaps "
                      f"{', '.join(f'{g:.2f}' for g in gaps)} s; the refresh token was kept")

        # Refresh counts.
        store = os.path.join(args.dir, f"store-after-{name}.txt")
        stored = open(store, encoding="utf-8").read().strip() if os.path.exists(store) else None
        check(stored == last_refresh, f"{name}: the store does not hold the last refresh token "
              f"issued")
        if boot_no == 1:
            stored_after_boot1 = stored
        if protected and tokens:
            span = max(e["t"] for e in protected) - min(e["t"] for e in tokens)
            good = [e for e in tokens if e["status"] == 200]
            lives = interop.inferred_lives(good, protected, lifetime)
            n_short = sum(life < lifetime - 1 for life in lives[:-1])
            lo = math.ceil(span / lifetime) - 1
            hi = math.floor(span / interop.MIN_GAP) + 2 + n_short
            r = len(ok_refreshes)
            check(lo <= r <= hi, f"{name}: {r} refreshes over {span:.2f} s, expected {lo}..{hi}")
            # tests/interop's schedule check on the successful token requests: none earlier than
            # the policy allows after the one before (the outage's failures only delay them).
            margin, early = interop.schedule(good, lives)
            check(not early, f"{name}: token requests earlier than the policy's schedule: "
                  f"{early[:3]}")
            left = [e["remaining"] for e in protected
                    if isinstance(e.get("remaining"), (int, float))]
            if left:
                print(f"{name}: least life left on an API request's token at the server: "
                      f"{min(left):.2f} s; schedule margin {margin if margin is None else round(margin, 3)} s")
            if boot_no == 1:
                check(span > 4 * lifetime, f"{name}: the requests span {span:.2f} s, under 4 "
                      f"access lifetimes ({4 * lifetime} s)")
            us = [r["us"] for r in rows if isinstance(r.get("us"), int)]
            if summary and isinstance(summary.get("stack_peak"), int):
                print(f"{name}: peak stack {summary['stack_peak']:,} B of "
                      f"{summary.get('stack_size', 0):,} B (painted at boot)")
            print(f"{name}: {n} API requests, all 200, none expired; {len(tokens)} token-endpoint "
                  f"requests ({len(logins)} login, {len(ok_refreshes)} refreshes, "
                  f"{len(refreshes) - len(ok_refreshes)} answered 503) over {span:.1f} s, "
                  f"{span / lifetime:.1f} token lifetimes (one request per lifetime: "
                  f"{math.ceil(span / lifetime)}); per API request in the emulator: median "
                  f"{statistics.median(us) / 1000:.0f} ms, max {max(us) / 1000:.0f} ms "
                  f"(token requests included)" if us else f"{name}: no timings")

        err_path = os.path.join(args.dir, f"{name}.err")
        if os.path.exists(err_path):
            with open(err_path, encoding="utf-8", errors="replace") as f:
                text += f.read()
        kinds, tokens_seen = redact.leaks(text)
        check(not kinds and not tokens_seen, f"{name}: token or password text in the "
              f"firmware's output: {', '.join(kinds) or 'none known'}, {tokens_seen} "
              f"token-like piece(s)")

        # The guest's traffic: nothing but the server, through the one forwarding rule.
        pcap = os.path.join(args.dir, f"{name}.pcap")
        if check(os.path.exists(pcap), f"{name}: no packet capture {pcap}"):
            arp, dests, packets = guest_traffic(pcap)
            check(packets > 0 and dests, f"{name}: the capture holds no packet from the guest")
            check(arp <= {SERVER}, f"{name}: the guest asked ARP for {sorted(arp)}")
            other = sorted(d for d in dests if d != (SERVER, 6, SERVER_PORT))
            check(not other, f"{name}: the guest sent to other than {SERVER}:{SERVER_PORT}/tcp: "
                  f"{other}")
            print(f"{name}: {packets} frames captured; the guest sent IPv4 only to "
                  f"{SERVER}:{SERVER_PORT}/tcp")

    if interop.failures:
        for f in interop.failures:
            print(f"FAIL: {redact(f)}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
