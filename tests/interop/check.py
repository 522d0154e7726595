#!/usr/bin/env python3
"""Checks the interop runs made by run.sh against the server's request log.

Usage: check.py --api URL --log SERVER_LOG --dir WORKDIR [--lifetime 3]
                [--set LABEL=P,S,R ...] [--concurrent LABEL=RUN ...] [--verbose] [--no-replay]

Two kinds of run set:

- A sequence set (`--set std=A,B,C`; the default when no set is named): one client, one caller.
  P is a plain run (24 requests 500 ms apart), S a run with an empty --store (8 requests), R a
  run restoring from S's store (8 requests). The store must follow every rotation, R must go on
  from the refresh token S stored without logging in, and replaying a rotated refresh token must
  be refused ("Token is blacklisted") while the live one still refreshes. run.sh passes four:
  std=A,B,C, ureq=UA,UB,UC, reqwest=RA,RB,RC and reqwless=RLA,RLB,RLC. Every one is held to
  the same checks and bounds below: they differ only in the transport under the same session
  (the reqwless set opens a connection per request, which the log does not show and no check
  depends on).
- A concurrent set (`--concurrent threads=T32`): one run of CALLERS threads or tasks sharing one
  session, each sending its requests; see "Concurrent runs" below.

WORKDIR holds, for each run NAME: NAME.stdout (the client's stdout), NAME.meta (JSON: `start` /
`end`, the run's lines in SERVER_LOG as a half-open range of line indexes, `rc`, `requests` (per
caller), `interval_ms`, `callers` (default 1), `wall_start` / `wall_end` (the client process's
wall-clock start and end, optional)), and for a sequence set store-after-S.txt / store-after-R.txt
(copies of the --store file after runs S and R). Prints one line per set; every failed check is
printed; the exit status is 1 if any failed.

Every run: each protected request answered 200 and presenting, by the server's own clock at its
arrival, an unexpired access token issued earlier in the run (`exp` > arrival: SimpleJWT rejects
once now >= exp); every token request answered 200; no answer "Token is blacklisted"; each
refresh presents the newest refresh token issued before it (the chain is unbroken, so no two
refreshes ever presented the same token); no token request arrives before the previous one was
answered (server times: its `t` after the previous one's `t_end`: a client that waits for each
answer cannot do otherwise, whatever the load, so an overlap is a second refresh in flight); the
client's summary line agrees with the server.

The lease the client infers (crate's RefreshPolicy::lease, default policy): a token's life is
l = exp - iat whole seconds less 1 s (the second that flooring iat can cost); it refreshes a
routine lease no sooner than l / 2 after sending the request that fetched it, by its monotonic
clock, and the first lease of a session (the run's first token request, or a login) no sooner
than l / 10 (its wide jitter scatters a fleet that logged in together). For a 3 s SimpleJWT
token exp - iat = 3, so l = 2 s: one token request per second at most. But SimpleJWT 5.5's
refresh builds the new access token's exp from the instant it decoded the presented refresh
token and its iat from the instant it built the access token, after a database lookup of the
user (TokenRefreshSerializer.validate, RefreshToken.access_token): when a second boundary falls
between the two, exp - iat = 2, l = 1 s, and the client rightly refreshes that token after 0.5 s.
The log gives each returned access token's exp and iat, so every check below uses each lease's
own l (a "short lease" when l < 2 s). (This check used to take l = 2 s for every lease, and
failed a correct client: gaps of 0.52 s and 0.58 s after refreshes answered across a second
boundary, in a run of the std set.) (The lease is also capped by exp - wall when the client's
wall clock reads 2 s or more past iat; the checks take the latest wall reading possible, before
the token's first use or the next token request, so the shortest life the client can have
inferred.)

Bounds on the number of refreshes R in a run (span = first token request to last protected
request, in seconds, from the server's clock; L = the access lifetime, 3 s):

- lower: R >= ceil(span / L) - 1. A token obtained at t is dead at t + L (SimpleJWT rejects once
  now >= exp), so covering the span takes at least ceil(span / L) tokens, one of them the login's.
  (That no request presented an expired token is also checked directly.)
- upper: each token request comes at least l / 2 (MIN_GAP = 0.9 s for l = 2 s) after the one
  before, less GAP_SLACK = 0.1 s, or l / 10 after a first lease (FIRST_GAP = 0.1 s for l = 2 s,
  0.2 s less the slack): the "no storm" check, on the server's arrival times. The slack absorbs
  the difference between the client's send times and the server's arrival times. Hence
  R <= floor(span / MIN_GAP) + 2 + S, i.e. about span / 1 s: the +2 counts the early refresh of
  the first lease and the token request at the start of the span (run C starts with a refresh,
  not a login), and S, the number of short leases, one more refresh for each (a 1 s lease gives
  its refresh 0.5 s sooner, under one MIN_GAP).
  For run A (24 requests every 500 ms, span about 12 s) that is 3..14 refreshes; a client
  following the crate's default policy makes about 8 to 11.

The schedule (every run; exact, whatever the load): the request T_i that fetched a lease was sent
after the client had the answer to T_(i-1), so after the server's `t_end` for it, and each later
token request was sent no sooner than the earliest refresh of the lease before it (H_k = l_k / 2,
or l_k / 10 for a first lease) by the client's clock; a request arrives after it is sent. So for
every 0 < i < j:

    t(T_j) >= t_end(T_(i-1)) + H_i + ... + H_(j-1) - SCHEDULE_TOLERANCE

with SCHEDULE_TOLERANCE = 10 ms for the client's millisecond clock (1 ms) and float rounding; no
allowance for queueing is needed (queueing only delays arrivals). The client's monotonic clock
and the server's time.time() run at the same rate on one machine (an NTP step of the wall clock
during a run would break this). A refresh earlier than the client's own schedule shows here
however loaded the server is: over a chain of leases, the slack the gap check needs per pair
is not needed.

Concurrent runs (32 threads, or 100 tokio tasks, for about 20 s, over one shared session): the
same checks, with these differences.

- Requests: CALLERS x requests in all, each answered 200; the request lines' `i` are a
  permutation of 0..n-1 (callers print in any order), and the per-request refresh and login
  counts are not compared with the server's order (they are read while other callers run).
- Exactly one login; the run starts with it.
- Refreshes: R <= SINGLE + CONCURRENT_EXTRA, where SINGLE = floor(span / MIN_GAP) + 2 + S is
  the bound above, what one client alone can make over the same span (it makes about span / 1 s:
  one refresh each half of a 2 s inferred life), and CONCURRENT_EXTRA = 2 is the allowance the
  requirement grants a shared session over a lone client. A second refresh made concurrently by
  another caller would also show as a blacklisted answer, a broken chain, overlapping token
  requests or a schedule violation, each checked on its own.
- No gap check between consecutive token requests: its 0.1 s slack for the difference between
  the client's sends and the server's arrivals does not hold under this load. Right after the
  login, 100 tasks send at once, and the log of one run shows the first refresh queued at least
  0.19 s: the second refresh arrived 0.81 s after it, though it can only have been sent 1 s or
  more after the first was (the login's answer left at 0.665 s, the first refresh arrived at
  1.079 s and the second at 1.891 s: so the first was sent before 0.891 s). The schedule check
  above bounds the same thing exactly, with no slack to choose; the least gap between routine
  refreshes is printed.
- Durations: the span must cover at least 95 % of (requests - 1) x interval, per caller.
- Reuse: the login's refresh token (rotated by the first refresh) must be refused as
  blacklisted, and the last refresh token issued must still refresh (the control).
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
GAP_SLACK = 0.1
CONCURRENT_EXTRA = 2
SCHEDULE_TOLERANCE = 0.010
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
    except (IndexError, ValueError, UnicodeError, AttributeError):
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


def blacklisted(e):
    """Whether an answer says the presented token is blacklisted."""
    err = e.get("error") or {}
    return e["status"] != 200 and "blacklist" in str(err.get("detail", "")).lower()


def parse_stdout(name, path, requests, ordered=True):
    """The client's per-request lines and its summary; None on a malformed output. `ordered`:
    the lines come in the order of their `i` (one caller); otherwise any order."""
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
        if bad or (ordered and row["i"] != n) or not (row.get("status") is None
                                                      or isinstance(row.get("status"), int)):
            fail(f"run {name}: request line {n} should be "
                 f'{{"i":{n if ordered else ".."},"status":..,"refreshes":..,"logins":..}}, '
                 f"got {row}")
            return None, None
    check(len(rows) == requests,
          f"run {name}: {len(rows)} request lines on stdout for {requests} requests")
    if not ordered and len(rows) == requests:
        check(sorted(r["i"] for r in rows) == list(range(requests)),
              f"run {name}: the request lines' i are not a permutation of 0..{requests - 1}")
    return rows, summary


def inferred_lives(ordered, protected, lifetime):
    """For each token request (ordered by arrival), the life in seconds the client infers for the
    access token it returned, as RefreshPolicy::lease does: exp - iat whole seconds, less the
    second that flooring iat can cost. Capped by exp - wall when the client's wall clock (whole
    seconds, read when the answer arrives) is 2 s or more past iat: the client read it before it
    used the token or sent the next token request, so at most the floor of whichever of those
    the server saw first; the cap is applied with that latest possible reading, the shortest life
    the client can have inferred. Without exp and iat: lifetime - 1."""
    first_use = {}
    for e in protected:
        if e.get("jti") is not None and e["t"] < first_use.get(e["jti"], math.inf):
            first_use[e["jti"]] = e["t"]
    lives = []
    for k, e in enumerate(ordered):
        exp, iat = e.get("returned_access_exp"), e.get("returned_access_iat")
        if not (isinstance(exp, int) and isinstance(iat, int)):
            lives.append(lifetime - 1)
            continue
        secs = exp - iat
        later = [first_use.get(e.get("returned_access_jti"), math.inf)]
        if k + 1 < len(ordered):
            later.append(ordered[k + 1]["t"])
        wall = math.floor(min(later)) if min(later) < math.inf else None
        if wall is not None and wall >= iat + 2:
            secs = min(secs, exp - wall)
        lives.append(max(secs - 1, 0))
    return lives


def earliest(ordered, lives):
    """For each token request, how soon after its send the client may send the next one: half
    the inferred life of a routine lease, a tenth for a first lease (the run's first token
    request, a login)."""
    return [life * (0.1 if k == 0 or e["path"] == LOGIN else 0.5)
            for k, (e, life) in enumerate(zip(ordered, lives))]


def schedule(ordered, lives):
    """The schedule check (see the docstring): over token requests T_0.. ordered by arrival, for
    0 < i < j: T_j must arrive at least sum(H_i..H_(j-1)) - SCHEDULE_TOLERANCE after the answer
    to T_(i-1) left the server, H_k the earliest refresh of T_k's lease after its send. Returns
    the least margin over all pairs (None without any) and the violations as
    (i, j, seconds, needed), worst first."""
    soon = earliest(ordered, lives)
    margin, early = None, []
    for i in range(1, len(ordered)):
        need = -SCHEDULE_TOLERANCE
        for j in range(i + 1, len(ordered)):
            need += soon[j - 1]
            have = ordered[j]["t"] - ordered[i - 1]["t_end"]
            margin = have - need if margin is None else min(margin, have - need)
            if have < need:
                early.append((i, j, have, need))
    early.sort(key=lambda v: v[2] - v[3])
    return margin, early


def check_run(name, entries, meta, stdout_path, lifetime, seed_refresh_jti=None):
    """Checks one run; returns facts for the cross-run checks and the summary."""
    callers = meta.get("callers", 1)
    per_caller = meta["requests"]
    n = per_caller * callers
    concurrent = callers > 1
    run = entries[meta["start"]:meta["end"]]
    protected = [e for e in run if e["path"] == PROTECTED]
    tokens = [e for e in run if e["path"] in (LOGIN, REFRESH) and e["method"] == "POST"]
    logins = [e for e in tokens if e["path"] == LOGIN]
    refreshes = [e for e in tokens if e["path"] == REFRESH]
    others = [e for e in run if e not in protected and e not in tokens]
    facts = {"name": name, "tokens": tokens, "logins": logins, "refreshes": refreshes,
             "protected": protected, "callers": callers, "n": n, "concurrent": concurrent}

    check(meta["rc"] == 0, f"run {name}: the client exited {meta['rc']}, expected 0")
    check(not others, f"run {name}: unexpected requests: "
          f"{[(e['method'], e['path'], e['status']) for e in others]}")

    # The server's view.
    check(len(protected) == n,
          f"run {name}: the server saw {len(protected)} GET {PROTECTED}, expected {n}")
    bad = [(k, e["status"]) for k, e in enumerate(protected) if e["status"] != 200]
    check(not bad, f"run {name}: protected requests not answered 200 (index, status): {bad[:20]}"
          f"{' ...' if len(bad) > 20 else ''} ({len(bad)} in all)")
    # Expired at arrival: recomputed from the token's exp and the server's arrival time.
    expired = [(k, e.get("remaining")) for k, e in enumerate(protected)
               if e.get("auth") != "bearer" or e.get("expired") is not False
               or not isinstance(e.get("exp"), (int, float)) or e["t"] >= e["exp"]]
    facts["expired"] = len(expired)
    check(not expired, f"run {name}: protected requests presenting an expired (or no) bearer "
          f"token at arrival (index, exp - arrival in s): {expired[:20]} ({len(expired)} in all)")
    wrong_type = [k for k, e in enumerate(protected) if e.get("token_type") != "access"]
    check(not wrong_type, f"run {name}: protected requests not using an access token: "
          f"{wrong_type[:20]}")
    bad = [(e["path"], e["status"], e.get("error")) for e in tokens if e["status"] != 200]
    check(not bad, f"run {name}: token requests not answered 200: {bad}")
    listed = [(e["method"], e["path"], e["status"]) for e in run if blacklisted(e)]
    facts["blacklisted"] = len(listed)
    check(not listed, f"run {name}: {len(listed)} answer(s) 'Token is blacklisted' (a refresh "
          f"token presented again after its rotation: a second concurrent refresh?): {listed}")

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
    facts["last_refresh"] = next((e.get("returned_refresh") for e in
                                  sorted(tokens, key=lambda e: e["t"], reverse=True)
                                  if e["status"] == 200 and e.get("returned_refresh")), None)
    presented = [e.get("presented_refresh_jti") for e in refreshes]
    dup = sorted({short(j) for j in presented if presented.count(j) > 1})
    check(not dup, f"run {name}: refresh tokens presented more than once: {dup}")

    # One token request at a time: each arrives after the previous one was answered.
    ordered = sorted(tokens, key=lambda e: e["t"])
    overlaps = [(k + 1, round(b["t"] - a["t_end"], 3)) for k, (a, b)
                in enumerate(zip(ordered, ordered[1:])) if b["t"] <= a["t_end"]]
    facts["overlaps"] = len(overlaps)
    check(not overlaps, f"run {name}: token requests arriving before the previous one was "
          f"answered (two in flight at once; (index, seconds before its answer)): {overlaps}")

    # Timing: span, refresh count bounds, no storm, the schedule.
    if protected and tokens:
        start = min(e["t"] for e in tokens)
        span = max(e["t"] for e in protected) - start
        lives = inferred_lives(ordered, protected, lifetime)
        # Leases the client infers shorter than a whole SimpleJWT token's (see the docstring);
        # the last token request's does not count, nothing followed it.
        n_short = sum(life < lifetime - 1 for life in lives[:-1])
        lo = math.ceil(span / lifetime) - 1
        single = math.floor(span / MIN_GAP) + 2 + n_short
        hi = single + (CONCURRENT_EXTRA if concurrent else 0)
        r = len(refreshes)
        extra = (f" (one client alone: at most {single}, + {CONCURRENT_EXTRA})"
                 if concurrent else "")
        check(lo <= r <= hi, f"run {name}: {r} refreshes over {span:.2f} s; with a {lifetime} s "
              f"access lifetime expected between {lo} and {hi}{extra}, {n_short} short lease(s) "
              f"(see check.py's docstring)")
        gaps = [b["t"] - a["t"] for a, b in zip(ordered, ordered[1:])]
        soon = earliest(ordered, lives)
        first = [k == 0 or e["path"] == LOGIN for k, e in enumerate(ordered)]
        routine = [g for g, f in zip(gaps, first) if not f]
        if not concurrent:
            # Each gap at least the earliest refresh of the lease before it, less GAP_SLACK:
            # MIN_GAP = 0.9 s after a routine 2 s lease, FIRST_GAP = 0.1 s after a first one.
            storm = [round(g, 3) for g, h in zip(gaps, soon) if g < h - GAP_SLACK]
            check(not storm, f"run {name}: token requests closer than their leases allow, "
                  f"{MIN_GAP} s after a routine {lifetime - 1:g} s lease (refresh storm): gaps "
                  f"{storm}")
        margin, early = schedule(ordered, lives)
        if early:
            i, j, have, need = early[0]
            fail(f"run {name}: refreshes earlier than the client's own schedule allows (see "
                 f"check.py's docstring). Worst: token request {j} arrived {have:.3f} s after "
                 f"the answer to request {i - 1}, where the leases of requests {i}..{j - 1} "
                 f"(inferred lives {lives[i:j]} s) need at least {need:.3f} s ({len(early)} "
                 f"such pair(s))")
        first_p = min(e["t"] for e in protected)
        want = 0.95 * (per_caller - 1) * meta["interval_ms"] / 1000
        check(span >= want or max(e["t"] for e in protected) - first_p >= want,
              f"run {name}: requests spanned {span:.2f} s, expected at least {want:.2f} s for "
              f"{per_caller} requests every {meta['interval_ms']} ms")
        facts.update(span=span, lo=lo, hi=hi, single=single, short=n_short,
                     min_gap=min(gaps) if gaps else None, routine_gaps=routine,
                     schedule_margin=margin)
    else:
        facts.update(span=0.0, lo=0, hi=0, single=0, short=0, min_gap=None, routine_gaps=[],
                     schedule_margin=None)
    remaining = [e["remaining"] for e in protected if isinstance(e.get("remaining"), (int, float))]
    facts["min_remaining"] = min(remaining) if remaining else None
    facts["stale"] = stale
    facts["ok"] = sum(e["status"] == 200 for e in protected)
    wall = (meta.get("wall_start"), meta.get("wall_end"))
    facts["wall"] = wall[1] - wall[0] if all(isinstance(w, (int, float)) for w in wall) else None
    times = sorted(e["t_end"] - e["t"] for e in run if isinstance(e.get("t_end"), (int, float)))
    facts["p99"] = times[min(len(times) - 1, int(0.99 * len(times)))] if times else None

    # The client's own account agrees with the server's.
    rows, summary = parse_stdout(name, stdout_path, n, ordered=not concurrent)
    facts["summary"] = summary
    if summary is not None:
        ok = sum(200 <= e["status"] < 300 for e in protected)
        unauth = sum(e["status"] == 401 for e in protected)
        expect = {"requests": n, "ok": ok, "unauthorized": unauth,
                  "errors": n - ok - unauth, "refreshes": len(refreshes), "logins": len(logins)}
        diff = {k: (summary[k], v) for k, v in expect.items() if summary[k] != v}
        check(not diff, f"run {name}: client summary disagrees with the server log "
              f"(field: (client, server)): {diff}")
    if rows is not None and concurrent:
        not_ok = [r for r in rows if r["status"] != 200]
        check(not not_ok, f"run {name}: request lines not 200: {not_ok[:10]} ({len(not_ok)})")
        over = [r for r in rows if r["refreshes"] > len(refreshes) or r["logins"] > len(logins)]
        check(not over, f"run {name}: request lines counting more refreshes or logins than the "
              f"server saw ({len(refreshes)}, {len(logins)}): {over[:5]}")
    elif rows is not None and len(rows) == len(protected):
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
    except (OSError, ValueError) as err:  # no answer (URLError is an OSError)
        return None, {"error": str(err)}


def check_reuse(api, token, label):
    if api is None:
        return None, {}
    status, body = post_refresh(api, token)
    ok = (status == 401 and body.get("code") == "token_not_valid"
          and "blacklist" in str(body.get("detail", "")).lower())
    check(ok, f"reuse of {label}: expected 401 token_not_valid 'Token is blacklisted', got "
          f"{status} {brief(body)}")
    return status, body


def rotated(entries, token):
    """Whether a refresh token was rotated (presented in a refresh answered 200)."""
    jti = (claims(token) or {}).get("jti")
    return bool(jti) and any(e["path"] == REFRESH and e["status"] == 200
                             and e.get("presented_refresh_jti") == jti for e in entries)


def control(api, token, label):
    """The live refresh token must still refresh; returns the status."""
    if api is None:
        return "skipped"
    status, body = post_refresh(api, token)
    check(status == 200 and "access" in body and "refresh" in body,
          f"control: {label} should still refresh, got {status} {brief(body)}")
    return status


def check_sequence(api, label, names, entries, metas, workdir, lifetime):
    """A sequence set: plain run P, run S with an empty store, run R restoring from it."""
    p, s, r = names

    def out(name):
        return os.path.join(workdir, name + ".stdout")

    P = check_run(p, entries, metas[p], out(p), lifetime)
    S = check_run(s, entries, metas[s], out(s), lifetime)
    store_s = stored_refresh(os.path.join(workdir, f"store-after-{s}.txt"), f"after run {s}")
    store_s_jti = (claims(store_s) or {}).get("jti") if store_s else None
    R = check_run(r, entries, metas[r], out(r), lifetime, seed_refresh_jti=store_s_jti)
    store_r = stored_refresh(os.path.join(workdir, f"store-after-{r}.txt"), f"after run {r}")
    store_r_jti = (claims(store_r) or {}).get("jti") if store_r else None

    # P starts with a login.
    check(P["tokens"] and P["tokens"][0]["path"] == LOGIN,
          f"run {p}: the first token request should be a login (POST {LOGIN})")
    # S logs in once; R continues from the store without logging in.
    n_logins = len(S["logins"]) + len(R["logins"])
    check(n_logins == 1, f"runs {s}+{r}: {n_logins} POST {LOGIN}, expected exactly 1 ({s}'s "
          f"login; {r} must continue from the stored refresh token)")
    check(S["tokens"] and S["tokens"][0]["path"] == LOGIN,
          f"run {s}: the first token request should be a login (empty store)")
    check(store_s_jti is not None and store_s_jti == S["last_refresh_jti"],
          f"run {s}: the store holds refresh jti {short(store_s_jti)}, but the last one issued "
          f"in run {s} was {short(S['last_refresh_jti'])} (the store must follow rotation)")
    first_r = R["tokens"][0] if R["tokens"] else None
    check(first_r is not None and first_r["path"] == REFRESH
          and first_r.get("presented_refresh_jti") == store_s_jti,
          f"run {r}: the first token request should be a refresh presenting the token run {s} "
          f"stored (jti {short(store_s_jti)}), got "
          f"{(first_r['path'], short(first_r.get('presented_refresh_jti'))) if first_r else None}")
    check(store_r_jti is not None and store_r_jti == R["last_refresh_jti"],
          f"run {r}: the store holds refresh jti {short(store_r_jti)}, but the last one issued "
          f"in run {r} was {short(R['last_refresh_jti'])} (the store must follow rotation)")

    # Reuse of rotated refresh tokens: blacklisted. Then a positive control with the live one.
    reuse = []
    if store_s and rotated(entries, store_s):
        reuse.append((f"the refresh token stored by {s} (rotated in {r})", store_s))
    p_login = P["logins"][0].get("returned_refresh") if P["logins"] else None
    if p_login and rotated(entries, p_login):
        reuse.append((f"run {p}'s login refresh token (rotated in {p})", p_login))
    check(reuse, f"set {label}: no rotated refresh token available for the reuse check")
    for what, token in reuse:
        check_reuse(api, token, what)
    ctl = control(api, store_r, f"the live refresh token stored by {r}") if store_r else None
    return {"label": label, "kind": "sequence", "runs": [P, S, R], "reuse": len(reuse),
            "control": ctl}


def check_concurrent(api, label, name, entries, metas, workdir, lifetime):
    """A concurrent set: one run of many callers over one session."""
    F = check_run(name, entries, metas[name], os.path.join(workdir, name + ".stdout"), lifetime)
    check(len(F["logins"]) == 1, f"run {name}: {len(F['logins'])} POST {LOGIN}, expected "
          f"exactly 1 (one session for every caller)")
    check(F["tokens"] and sorted(F["tokens"], key=lambda e: e["t"])[0]["path"] == LOGIN,
          f"run {name}: the first token request should be the login")
    reuse = 0
    login_refresh = F["logins"][0].get("returned_refresh") if F["logins"] else None
    if check(login_refresh and rotated(entries, login_refresh),
             f"run {name}: the login's refresh token was never rotated (no reuse check)"):
        check_reuse(api, login_refresh, f"run {name}'s login refresh token (rotated in {name})")
        reuse = 1
    ctl = None
    if check(F["last_refresh"], f"run {name}: no refresh token issued (no control)"):
        ctl = control(api, F["last_refresh"], f"run {name}'s last refresh token")
    return {"label": label, "kind": "concurrent", "runs": [F], "reuse": reuse, "control": ctl}


def fmt_s(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f} s"


def detail(f):
    """One run's figures (--verbose, and on failure)."""
    s = f["summary"] or {}
    return (f"run {f['name']}: {len(f['protected'])} GET protected "
            f"({f['ok']} x 200) over {f['span']:.1f} s; "
            f"{len(f['logins'])} login(s), {len(f['refreshes'])} refresh(es) "
            f"(bounds {f['lo']}..{f['hi']}); min gap between token requests "
            f"{fmt_s(f['min_gap'])}; least life left at arrival {fmt_s(f['min_remaining'])}; "
            f"requests not using the newest access token {f['stale']}; blacklisted answers "
            f"{f['blacklisted']}; expired presented {f['expired']}; p99 time in Django "
            f"{fmt_s(f['p99'], 3)}; schedule margin {fmt_s(f['schedule_margin'], 3)}; client wall "
            f"time {fmt_s(f['wall'], 1)}; client summary {s}")


def headline(res):
    """The one line a set gets on success."""
    runs = res["runs"]
    if res["kind"] == "sequence":
        names = "/".join(f["name"] for f in runs)

        def each(key):
            return "+".join(str(len(f[key])) for f in runs)

        bounds = "/".join("%d..%d" % (f["lo"], f["hi"]) for f in runs)
        spans = "/".join("%.1f" % f["span"] for f in runs)
        margin = min((f["schedule_margin"] for f in runs if f["schedule_margin"] is not None),
                     default=None)
        return (f"{res['label']} ({names}): {sum(f['n'] for f in runs)} requests, "
                f"{sum(f['ok'] for f in runs)} x 200; refreshes {each('refreshes')} (bounds "
                f"{bounds}); logins {each('logins')}; blacklisted "
                f"{sum(f['blacklisted'] for f in runs)}; expired presented "
                f"{sum(f['expired'] for f in runs)}; spans {spans} s; short leases "
                f"{sum(f['short'] for f in runs)}; schedule margin {fmt_s(margin, 3)}; "
                f"replays refused {res['reuse']}, control {res['control']}")
    f = runs[0]
    gaps = f["routine_gaps"]
    return (f"{res['label']} ({f['name']}, {f['callers']} callers): {f['n']} requests, "
            f"{f['ok']} x 200, over {f['span']:.1f} s (client {fmt_s(f['wall'], 1)}); "
            f"refreshes {len(f['refreshes'])} (bound {f['hi']} = one client's "
            f"{f['single']} + {CONCURRENT_EXTRA}; at least {f['lo']}); logins "
            f"{len(f['logins'])}; blacklisted {f['blacklisted']}; expired presented "
            f"{f['expired']}; least life left {fmt_s(f['min_remaining'])}; routine refresh gaps "
            f"{fmt_s(min(gaps) if gaps else None)}..{fmt_s(max(gaps) if gaps else None)}; "
            f"short leases {f['short']}; schedule margin {fmt_s(f['schedule_margin'], 3)}; p99 "
            f"in Django {fmt_s(f['p99'], 3)}")


def named(spec, what):
    label, sep, runs = spec.partition("=")
    if not sep or not label or not runs:
        raise Fatal(f"{what} {spec!r}: expected LABEL=RUN[,RUN...]")
    return label, runs.split(",")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--api", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--lifetime", type=float, default=3.0)
    p.add_argument("--set", action="append", default=[], metavar="LABEL=P,S,R",
                   help="a sequence set: plain run, store run, restore run")
    p.add_argument("--concurrent", action="append", default=[], metavar="LABEL=RUN",
                   help="a concurrent set: one run of many callers")
    p.add_argument("--verbose", action="store_true", help="print every run's figures")
    p.add_argument("--no-replay", action="store_true",
                   help="skip the replays against the server (to check a kept work folder "
                        "again after the server has stopped)")
    a = p.parse_args()
    if not a.set and not a.concurrent:
        a.set = ["std=A,B,C"]

    sets = []
    for spec in a.set:
        label, runs = named(spec, "--set")
        if len(runs) != 3:
            raise Fatal(f"--set {spec!r}: a sequence set has three runs (plain, store, restore)")
        sets.append(("sequence", label, runs))
    for spec in a.concurrent:
        label, runs = named(spec, "--concurrent")
        if len(runs) != 1:
            raise Fatal(f"--concurrent {spec!r}: a concurrent set has one run")
        sets.append(("concurrent", label, runs))

    entries = load_log(a.log)
    metas = {}
    for _, _, runs in sets:
        for name in runs:
            with open(os.path.join(a.dir, name + ".meta"), encoding="utf-8") as f:
                metas[name] = json.load(f)

    api = None if a.no_replay else a.api
    results = []
    for kind, label, runs in sets:
        before = len(failures)
        if kind == "sequence":
            res = check_sequence(api, label, runs, entries, metas, a.dir, a.lifetime)
        else:
            res = check_concurrent(api, label, runs[0], entries, metas, a.dir, a.lifetime)
        res["failed"] = len(failures) - before
        results.append(res)

    for res in results:
        print(("FAILED " if res["failed"] else "") + headline(res))
        if a.verbose or res["failed"]:
            for f in res["runs"]:
                print("    " + detail(f))
    if failures:
        print(f"\nFAILED: {len(failures)} check(s):", file=sys.stderr)
        for msg in failures:
            print("  - " + msg, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fatal as err:
        print(f"FAILED: {err}", file=sys.stderr)
        sys.exit(1)
