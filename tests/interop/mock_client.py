#!/usr/bin/env python3
"""A stand-in for `cargo run --example std_http`, with the same command line (the SimpleJWT
subset) and output, used to develop and self-test the harness: run.sh runs it instead of the
crate's client when INTEROP_CLIENT is set, e.g.

    INTEROP_CLIENT="python3 tests/interop/mock_client.py" bash tests/interop/run.sh

It also stands in for `std_http --transport ureq` and `tokio_server --transport reqwless`
(`--transport` is ignored) and for `tokio_server` (`--tasks N` is `--concurrency N`): with
`--concurrency N`, N threads share one session, one of them refreshing at a time while holding
the session's lock.

It schedules refreshes like the crate's default policy (lifetime = exp - iat - 1 s; margin 10 %
of it, at least 1 s, at most half of it; jitter never before half-way). `--misbehave` makes it
break one rule on purpose, to show that check.py catches it:

- `late`:    refresh only after a 401 (presents expired tokens);
- `storm`:   refresh before every request;
- `relogin`: ignore the stored refresh token and log in again;
- `nostore`: never write the store after a rotation;
- `miscount`: report one refresh too many in the summary;
- `race`:    with --concurrency, every thread that finds the token due refreshes it, without
             waiting for the others (concurrent refreshes of one refresh token).
"""
import argparse
import base64
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request


def claims(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def call(method, url, body=None, bearer=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Connection", "close")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if bearer:
        req.add_header("Authorization", "Bearer " + bearer)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--protocol", default="simplejwt")
    p.add_argument("--api", required=True)
    p.add_argument("--auth")
    p.add_argument("--login-path", default="/api/token/")
    p.add_argument("--refresh-path", default="/api/token/refresh/")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--store")
    p.add_argument("--path", default="/api/protected/")
    p.add_argument("--requests", type=int, default=10)
    p.add_argument("--interval-ms", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--misbehave", default="none")
    p.add_argument("--transport", default="std")
    p.add_argument("--concurrency", "--tasks", type=int, default=1)
    a = p.parse_args()
    auth = (a.auth or a.api).rstrip("/")
    api = a.api.rstrip("/")
    rng = random.Random(a.seed)
    st = {"access": None, "refresh": None, "refresh_at": 0.0, "refreshes": 0, "logins": 0,
          "first": True}

    def save():
        if a.store and a.misbehave != "nostore":
            with open(a.store + ".tmp", "w") as f:
                f.write(st["refresh"] + "\n")
            os.replace(a.store + ".tmp", a.store)

    def lease(fetched_at, access):
        c = claims(access)
        life = max(c["exp"] - c["iat"] - 1, 0.001)
        margin = min(max(0.1 * life, 1.0), 300.0, life / 2)
        jitter = rng.uniform(0, (0.4 if st["first"] else 0.1) * life)
        st["refresh_at"] = fetched_at + max(life - margin - jitter, life / 2)
        st["first"] = False

    def login():
        t0 = time.monotonic()
        status, body = call("POST", auth + a.login_path,
                            {"username": a.username, "password": a.password})
        st["logins"] += 1
        print(f"login: {status}", file=sys.stderr)
        if status != 200:
            return False
        st["access"], st["refresh"] = body["access"], body["refresh"]
        st["first"] = True
        lease(t0, st["access"])
        save()
        return True

    def refresh():
        t0 = time.monotonic()
        status, body = call("POST", auth + a.refresh_path, {"refresh": st["refresh"]})
        st["refreshes"] += 1
        print(f"refresh: {status}", file=sys.stderr)
        if status != 200:
            return login()
        st["access"] = body["access"]
        st["refresh"] = body.get("refresh", st["refresh"])
        lease(t0, st["access"])
        save()
        return True

    if a.store and os.path.exists(a.store) and a.misbehave != "relogin":
        with open(a.store) as f:
            st["refresh"] = f.read().strip()
    lock = threading.Lock()  # the session
    out = threading.Lock()  # the counters and stdout
    totals = {"ok": 0, "unauthorized": 0, "errors": 0, "next": 0}

    def prepare():
        """Refreshes or logs in when needed; the access token to send."""
        if a.misbehave == "race":
            with lock:
                access, due = st["access"], time.monotonic() >= st["refresh_at"]
            if access is not None and due:
                refresh()  # unlocked: every due thread refreshes
            with lock:
                if st["access"] is None:
                    refresh() if st["refresh"] else login()
                return st["access"]
        with lock:
            if st["access"] is None:
                refresh() if st["refresh"] else login()
            elif a.misbehave == "storm" or (
                    a.misbehave != "late" and time.monotonic() >= st["refresh_at"]):
                refresh()
            return st["access"]

    def caller():
        for n in range(a.requests):
            if n:
                time.sleep(a.interval_ms / 1000)
            try:
                status, _ = call("GET", api + a.path, bearer=prepare())
                if status == 401 and a.misbehave == "late":
                    with lock:
                        refresh()
            except OSError as err:
                print(f"request: {err}", file=sys.stderr)
                status = 0
            with out:
                if 200 <= status < 300:
                    totals["ok"] += 1
                elif status == 401:
                    totals["unauthorized"] += 1
                else:
                    totals["errors"] += 1
                i = totals["next"]
                totals["next"] += 1
                print(json.dumps({"i": i, "status": status, "refreshes": st["refreshes"],
                                  "logins": st["logins"]}, separators=(",", ":")), flush=True)

    threads = [threading.Thread(target=caller) for _ in range(max(a.concurrency, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    requests = a.requests * len(threads)
    refreshes = st["refreshes"] + (1 if a.misbehave == "miscount" else 0)
    print(json.dumps({"summary": {"requests": requests, "ok": totals["ok"],
                                  "unauthorized": totals["unauthorized"],
                                  "errors": totals["errors"], "refreshes": refreshes,
                                  "logins": st["logins"]}}, separators=(",", ":")), flush=True)
    return 0 if totals["ok"] == requests else 1


if __name__ == "__main__":
    sys.exit(main())
