"""Request log for the interop checker: one JSON line per request, appended to $INTEROP_LOG.

Every line has `t` (wall time at arrival in Django, float seconds since the epoch), `t_end` (when
the response was ready), `pid` (the worker process), `method`, `path` and `status`. Tokens are
decoded WITHOUT verification (only to tell the checker what was presented); the server itself
verifies them as usual.

- `/api/protected/`: `auth` ("bearer", "none" or "other"), and for a bearer JWT its `jti`,
  `token_type`, `exp`, `remaining` (`exp - t`) and `expired` (`t >= exp`: SimpleJWT rejects a
  token once now >= exp, with LEEWAY = 0).
- `/api/token/` and `/api/token/refresh/`: `presented_refresh` (+ `_jti`) from the request body,
  `returned_refresh` / `returned_access` (+ `_jti`, and `returned_access_exp` / `_iat`) from a 2xx
  answer, `error` (`code` / `detail`) from an error answer. Full refresh tokens are logged so
  that the checker can replay a rotated one: this is a throwaway test server with a random key.
"""
import base64
import json
import os
import threading
import time

_lock = threading.Lock()


def jwt_claims(token):
    """The payload of a compact JWS, unverified; None when it is not one."""
    if not isinstance(token, str):
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _json(data):
    try:
        value = json.loads(data)
    except (ValueError, UnicodeError):
        return None
    return value if isinstance(value, dict) else None


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.path = os.environ["INTEROP_LOG"]

    def __call__(self, request):
        t = time.time()
        entry = {"t": t, "pid": os.getpid(), "method": request.method, "path": request.path}

        if request.path == "/api/protected/":
            header = request.META.get("HTTP_AUTHORIZATION", "")
            if not header:
                entry["auth"] = "none"
            elif header.startswith("Bearer "):
                entry["auth"] = "bearer"
                claims = jwt_claims(header[len("Bearer "):].strip()) or {}
                entry["jti"] = claims.get("jti")
                entry["token_type"] = claims.get("token_type")
                exp = claims.get("exp")
                if isinstance(exp, (int, float)):
                    entry["exp"] = exp
                    entry["remaining"] = round(exp - t, 4)
                    entry["expired"] = t >= exp
            else:
                entry["auth"] = "other"
        elif request.path in ("/api/token/", "/api/token/refresh/") and request.method == "POST":
            # Reading the body here is safe: DRF then parses its cached copy.
            body = _json(request.body) or {}
            presented = body.get("refresh")
            if isinstance(presented, str):
                entry["presented_refresh"] = presented
                entry["presented_refresh_jti"] = (jwt_claims(presented) or {}).get("jti")

        response = self.get_response(request)
        entry["status"] = response.status_code
        entry["t_end"] = time.time()

        if entry["path"] in ("/api/token/", "/api/token/refresh/") and request.method == "POST":
            answer = _json(getattr(response, "content", b"")) or {}
            if 200 <= response.status_code < 300:
                for kind in ("refresh", "access"):
                    token = answer.get(kind)
                    if isinstance(token, str):
                        claims = jwt_claims(token) or {}
                        entry["returned_" + kind + "_jti"] = claims.get("jti")
                        if kind == "refresh":
                            entry["returned_refresh"] = token
                        else:
                            entry["returned_access_exp"] = claims.get("exp")
                            entry["returned_access_iat"] = claims.get("iat")
            else:
                entry["error"] = {"code": answer.get("code"), "detail": answer.get("detail")}

        # One write(2) of the whole line with O_APPEND: lines from several worker processes
        # (gunicorn) never interleave. A line is written before the response leaves, so once a
        # client has its answers, their lines are in the log.
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        with _lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, line)
            finally:
                os.close(fd)
        if written != len(line):
            raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
        return response
