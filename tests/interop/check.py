#!/usr/bin/env python3
"""Checks the interop runs made by run.sh against the server's request log.

Usage: check.py --api URL --log SERVER_LOG --dir WORKDIR [--lifetime 3]

WORKDIR holds, for each run NAME in A, B, C: NAME.stdout (the client's stdout), NAME.meta (JSON:
`start` / `end`, the run's lines in SERVER_LOG as a half-open range of line indexes, `rc`,
`requests`, `interval_ms`), and store-after-B.txt / store-after-C.txt (copies of the --store file
after runs B and C). Every failed check is printed; the exit status is 1 if any failed.

Bounds on the number of refreshes R in a run (span = first token request to last protected
request, in seconds, from the server's clock; L = the access lifetime, 3 s):

- lower: R >= ceil(span / L) - 1. A token obtained at t is dead at t + L (SimpleJWT rejects once
  now >= exp), so covering the span takes at least ceil(span / L) tokens, one of them the login's.
  (That no request presented an expired token is also checked directly.)
- upper: any two token requests (login or refresh) at least MIN_GAP = 0.9 s apart (the "no
  storm" check), hence R <= floor(span / MIN_GAP) + 2, i.e. about span / 1 s. The client
  refreshes a routine lease at the earliest half-way through a token's life; the shortest life
  it can infer for a 3 s SimpleJWT token is 2 s (exp - iat, less the second that flooring iat
  can cost), so it sends at most one token request per second of its own clock. The first lease
  of a session (after the run's first token request or a login) may be refreshed from a tenth of
  its life on (its wide jitter scatters a fleet that logged in together), so the gap after such a
  request need only be FIRST_GAP = 0.1 s (0.2 s less slack); the +2 counts that early refresh and
  the token request at the start of the span (run C starts with a refresh, not a login). The
  0.1 s slack absorbs the difference between the client's send times and the server's arrival
  times.
  For run A (24 requests every 500 ms, span about 12 s) that is 3..14 refreshes; a client
  following the crate's default policy makes about 8 to 11.
"""
import argparse
import base64
import json
import math
import os
import re
import sys
import urllib.error
import urllib.request

PROTECTED = "/api/protected/"
LOGIN = "/api/token/"
REFRESH = "/api/token/refresh/"
MIN_GAP = 0.9
FIRST_GAP = 0.1
JWT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

failures = []


def fail(msg):
    failures.append(msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


class Fatal(Exception):
    pass


def claims(token):
    try:
        part = token.split(".")[1]
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return value if isinstance(value, dict) else None
    except (IndexError, ValueError, UnicodeError):
        return None


def short(jti):
    return (jti or "?")[:8]


def load_log(path):
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                entries.append(json.loads(line))
            except ValueError:
                raise Fatal(f"server log {path}:{n} is not JSON: {line[:200]!r}")
    return entries


def parse_stdout(name, path, requests):
    """The client's per-request lines and its summary; None on a malformed output."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    rows, summary = [], None
    for n, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except ValueError:
            fail(f"run {name}: stdout line {n} is not JSON: {line[:200]!r}")
            return None, None
        if summary is not None:
            fail(f"run {name}: stdout line {n} comes after the summary line: {line[:200]!r}")
            return None, None
        if isinstance(obj, dict) and isinstance(obj.get("summary"), dict):
            summary = obj["summary"]
        elif isinstance(obj, dict) and "i" in obj:
            rows.append(obj)
        else:
            fail(f"run {name}: stdout line {n} is neither a request line nor the summary: "
                 f"{line[:200]!r}")
            return None, None
    if not check(summary is not None, f"run {name}: no summary line on stdout"):
        return None, None
    keys = ("requests", "ok", "unauthorized", "errors", "refreshes", "logins")
    missing = [k for k in keys if not isinstance(summary.get(k), int)]
    if not check(not missing, f"run {name}: summary lacks integer {missing}: {summary}"):
        return None, None
    for n, row in enumerate(rows):
        bad = [k for k in ("i", "refreshes", "logins") if not isinstance(row.get(k), int)]
        # `status` is null when the request got no HTTP answer at all.
        if bad or row["i"] != n or not (row.get("status") is None
                                         or isinstance(row.get("status"), int)):
            fail(f"run {name}: request line {n} should be "
                 f'{{"i":{n},"status":..,"refreshes":..,"logins":..}}, got {row}')
            return None, None
    check(len(rows) == requests,
          f"run {name}: {len(rows)} request lines on stdout for --requests {requests}")
    return rows, summary


def check_run(name, entries, meta, stdout_path, lifetime, seed_refresh_jti=None):
    """Checks one run; returns facts for the cross-run checks and the summary."""
    n = meta["requests"]
    run = entries[meta["start"]:meta["end"]]
    protected = [e for e in run if e["path"] == PROTECTED]
    tokens = [e for e in run if e["path"] in (LOGIN, REFRESH) and e["method"] == "POST"]
    logins = [e for e in tokens if e["path"] == LOGIN]
    refreshes = [e for e in tokens if e["path"] == REFRESH]
    others = [e for e in run if e not in protected and e not in tokens]
    facts = {"name": name, "tokens": tokens, "logins": logins, "refreshes": refreshes,
             "protected": protected}

    check(meta["rc"] == 0, f"run {name}: the client exited {meta['rc']}, expected 0")
    check(not others, f"run {name}: unexpected requests: "
          f"{[(e['method'], e['path'], e['status']) for e in others]}")

    # The server's view.
    check(len(protected) == n,
          f"run {name}: the server saw {len(protected)} GET {PROTECTED}, expected {n}")
    bad = [(k, e["status"]) for k, e in enumerate(protected) if e["status"] != 200]
    check(not bad, f"run {name}: protected requests not answered 200 (index, status): {bad}")
    expired = [(k, e.get("remaining")) for k, e in enumerate(protected)
               if e.get("auth") != "bearer" or e.get("expired") is not False]
    check(not expired, f"run {name}: protected requests presenting an expired (or no) bearer "
          f"token at arrival (index, exp - arrival in s): {expired}")
    wrong_type = [k for k, e in enumerate(protected) if e.get("token_type") != "access"]
    check(not wrong_type, f"run {name}: protected requests not using an access token: {wrong_type}")
    bad = [(e["path"], e["status"], e.get("error")) for e in tokens if e["status"] != 200]
    check(not bad, f"run {name}: token requests not answered 200: {bad}")

    # Every access token used was issued earlier in this run; the refresh chain is unbroken.
    issued = set()
    current = seed_refresh_jti
    k_tok = 0
    stale = 0
    last_access = None
    for e in sorted(run, key=lambda e: e["t"]):
        if e in tokens:
            k_tok += 1
            if e["path"] == REFRESH:
                check(current is not None and e.get("presented_refresh_jti") == current,
                      f"run {name}: token request {k_tok} (a refresh) presented refresh jti "
                      f"{short(e.get('presented_refresh_jti'))}, but the latest refresh token "
                      f"issued was {short(current)}")
            if e["status"] == 200:
                current = e.get("returned_refresh_jti") or current
                if e.get("returned_access_jti"):
                    issued.add(e["returned_access_jti"])
                    last_access = e["returned_access_jti"]
        elif e in protected:
            check(e.get("jti") in issued, f"run {name}: a protected request presented access jti "
                  f"{short(e.get('jti'))}, not issued earlier in this run")
            stale += e.get("jti") != last_access
    facts["last_refresh_jti"] = current

    # Timing: span, refresh count bounds, no storm.
    if protected and tokens:
        start = min(e["t"] for e in tokens)
        span = max(e["t"] for e in protected) - start
        lo = math.ceil(span / lifetime) - 1
        hi = math.floor(span / MIN_GAP) + 2
        r = len(refreshes)
        check(lo <= r <= hi, f"run {name}: {r} refreshes over {span:.2f} s; with a {lifetime} s "
              f"access lifetime expected between {lo} and {hi} (see check.py's docstring)")
        ordered = sorted(tokens, key=lambda e: e["t"])
        gaps = [b["t"] - a["t"] for a, b in zip(ordered, ordered[1:])]
        # After the run's first token request or a login, the next may come after FIRST_GAP.
        allowed = [FIRST_GAP if i == 0 or a["path"] == LOGIN else MIN_GAP
                   for i, a in enumerate(ordered[:-1])]
        storm = [round(g, 3) for g, need in zip(gaps, allowed) if g < need]
        check(not storm, f"run {name}: token requests closer than {MIN_GAP} s (refresh storm): "
              f"gaps {storm}")
        first_p = min(e["t"] for e in protected)
        want = 0.95 * (n - 1) * meta["interval_ms"] / 1000
        check(span >= want or max(e["t"] for e in protected) - first_p >= want,
              f"run {name}: requests spanned {span:.2f} s, expected at least {want:.2f} s for "
              f"{n} requests every {meta['interval_ms']} ms")
        facts.update(span=span, lo=lo, hi=hi, min_gap=min(gaps) if gaps else None)
    else:
        facts.update(span=0.0, lo=0, hi=0, min_gap=None)
    remaining = [e["remaining"] for e in protected if isinstance(e.get("remaining"), (int, float))]
    facts["min_remaining"] = min(remaining) if remaining else None
    facts["stale"] = stale

    # The client's own account agrees with the server's.
    rows, summary = parse_stdout(name, stdout_path, n)
    facts["summary"] = summary
    if summary is not None:
        ok = sum(200 <= e["status"] < 300 for e in protected)
        unauth = sum(e["status"] == 401 for e in protected)
        expect = {"requests": n, "ok": ok, "unauthorized": unauth,
                  "errors": n - ok - unauth, "refreshes": len(refreshes), "logins": len(logins)}
        diff = {k: (summary[k], v) for k, v in expect.items() if summary[k] != v}
        check(not diff, f"run {name}: client summary disagrees with the server log "
              f"(field: (client, server)): {diff}")
    if rows is not None and len(rows) == len(protected):
        for row, e in zip(rows, protected):
            want = {"status": e["status"],
                    "refreshes": sum(r["t"] < e["t"] for r in refreshes),
                    "logins": sum(l["t"] < e["t"] for l in logins)}
            got = {k: row[k] for k in want}
            if got != want:
                fail(f"run {name}: request line {row['i']} says {got}, the server log implies "
                     f"{want} (refreshes and logins counted before that request)")
                break
    return facts


def refresh_jwts(path):
    """The refresh tokens in a store file, whatever its format (JWTs found by pattern)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    found = []
    for token in JWT_RE.findall(text):
        c = claims(token)
        if c and c.get("token_type") == "refresh" and token not in found:
            found.append(token)
    return found


def stored_refresh(path, label):
    if not check(os.path.exists(path), f"{label}: the store file does not exist"):
        return None
    tokens = refresh_jwts(path)
    if not check(len(tokens) == 1,
                 f"{label}: expected exactly one refresh JWT in the store file, found "
                 f"{len(tokens)}"):
        return None
    return tokens[0]


def brief(body):
    """An answer body for a message, tokens shortened."""
    return {k: (v[:16] + "..." if isinstance(v, str) and len(v) > 60 else v)
            for k, v in body.items()}


def post_refresh(api, token):
    req = urllib.request.Request(
        api.rstrip("/") + REFRESH, data=json.dumps({"refresh": token}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body or b"{}")
        except ValueError:
            return err.code, {"raw": body[:200].decode(errors="replace")}


def check_reuse(api, token, label):
    status, body = post_refresh(api, token)
    ok = (status == 401 and body.get("code") == "token_not_valid"
          and "blacklist" in str(body.get("detail", "")).lower())
    check(ok, f"reuse of {label}: expected 401 token_not_valid 'Token is blacklisted', got "
          f"{status} {brief(body)}")
    return status, body


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--api", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--lifetime", type=float, default=3.0)
    a = p.parse_args()

    entries = load_log(a.log)
    metas = {}
    for name in "ABC":
        with open(os.path.join(a.dir, name + ".meta"), encoding="utf-8") as f:
            metas[name] = json.load(f)

    def out(name):
        return os.path.join(a.dir, name + ".stdout")

    A = check_run("A", entries, metas["A"], out("A"), a.lifetime)
    B = check_run("B", entries, metas["B"], out("B"), a.lifetime)
    store_b = stored_refresh(os.path.join(a.dir, "store-after-B.txt"), "after run B")
    store_b_jti = (claims(store_b) or {}).get("jti") if store_b else None
    C = check_run("C", entries, metas["C"], out("C"), a.lifetime, seed_refresh_jti=store_b_jti)
    store_c = stored_refresh(os.path.join(a.dir, "store-after-C.txt"), "after run C")
    store_c_jti = (claims(store_c) or {}).get("jti") if store_c else None

    # Run A starts with a login.
    check(A["tokens"] and A["tokens"][0]["path"] == LOGIN,
          "run A: the first token request should be a login (POST /api/token/)")
    # B logs in once; C continues from the store without logging in.
    n_logins = len(B["logins"]) + len(C["logins"])
    check(n_logins == 1, f"runs B+C: {n_logins} POST {LOGIN}, expected exactly 1 (B's login; C "
          f"must continue from the stored refresh token)")
    check(B["tokens"] and B["tokens"][0]["path"] == LOGIN,
          "run B: the first token request should be a login (empty store)")
    check(store_b_jti is not None and store_b_jti == B["last_refresh_jti"],
          f"run B: the store holds refresh jti {short(store_b_jti)}, but the last one issued in "
          f"run B was {short(B['last_refresh_jti'])} (the store must follow rotation)")
    first_c = C["tokens"][0] if C["tokens"] else None
    check(first_c is not None and first_c["path"] == REFRESH
          and first_c.get("presented_refresh_jti") == store_b_jti,
          f"run C: the first token request should be a refresh presenting the token run B stored "
          f"(jti {short(store_b_jti)}), got "
          f"{(first_c['path'], short(first_c.get('presented_refresh_jti'))) if first_c else None}")
    check(store_c_jti is not None and store_c_jti == C["last_refresh_jti"],
          f"run C: the store holds refresh jti {short(store_c_jti)}, but the last one issued in "
          f"run C was {short(C['last_refresh_jti'])} (the store must follow rotation)")

    # Reuse of rotated refresh tokens: blacklisted. Then a positive control with the live one.
    def rotated(token):
        jti = (claims(token) or {}).get("jti")
        return jti and any(e["path"] == REFRESH and e["status"] == 200
                           and e.get("presented_refresh_jti") == jti for e in entries)

    reuse = []
    if store_b and rotated(store_b):
        reuse.append(("the refresh token stored by B (rotated in C)", store_b))
    a_login = A["logins"][0].get("returned_refresh") if A["logins"] else None
    if a_login and rotated(a_login):
        reuse.append(("run A's login refresh token (rotated in A)", a_login))
    check(reuse, "no rotated refresh token available for the reuse check")
    for label, token in reuse:
        check_reuse(a.api, token, label)
    control = None
    if store_c:
        status, body = post_refresh(a.api, store_c)
        control = status
        check(status == 200 and "access" in body and "refresh" in body,
              f"control: the live refresh token stored by C should still refresh, got "
              f"{status} {brief(body)}")

    print("interop check:")
    for f in (A, B, C):
        s = f["summary"] or {}
        gap = f"{f['min_gap']:.2f} s" if f["min_gap"] is not None else "-"
        rem = f"{f['min_remaining']:.2f} s" if f["min_remaining"] is not None else "-"
        print(f"  run {f['name']}: {len(f['protected'])} GET protected "
              f"({sum(e['status'] == 200 for e in f['protected'])} x 200) over {f['span']:.1f} s; "
              f"{len(f['logins'])} login(s), {len(f['refreshes'])} refresh(es) "
              f"(bounds {f['lo']}..{f['hi']}); min gap between token requests {gap}; "
              f"least life left at arrival {rem}; requests not using the newest access token "
              f"{f['stale']}; client summary {s}")
    print(f"  reuse: {len(reuse)} rotated refresh token(s) replayed -> 401 blacklisted; "
          f"live token control -> {control}")
    if failures:
        print(f"\nFAILED: {len(failures)} check(s):", file=sys.stderr)
        for msg in failures:
            print("  - " + msg, file=sys.stderr)
        return 1
    print("  all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fatal as err:
        print(f"FAILED: {err}", file=sys.stderr)
        sys.exit(1)
