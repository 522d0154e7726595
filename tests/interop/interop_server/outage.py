"""A token-endpoint outage, for examples/firmware-net: with INTEROP_OUTAGE="AFTER:COUNT", the
refresh requests after the first AFTER (counted across every worker, in INTEROP_LOG + ".refreshes")
are answered 503 until COUNT of them have been, as a load balancer answers while the auth service
is down. Login, the API and every other refresh are served as usual. Only in MIDDLEWARE when
INTEROP_OUTAGE is set (settings.py).
"""
import fcntl
import os

from django.http import JsonResponse

REFRESH = "/api/token/refresh/"


class OutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        after, count = os.environ["INTEROP_OUTAGE"].split(":")
        self.first, self.last = int(after) + 1, int(after) + int(count)
        self.counter = os.environ["INTEROP_LOG"] + ".refreshes"

    def next_number(self):
        """This refresh request's number (1, 2, ...), under a file lock shared by the workers."""
        with open(self.counter, "a+", encoding="ascii") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            n = int(f.read() or 0) + 1
            f.seek(0)
            f.truncate()
            f.write(str(n))
            return n

    def __call__(self, request):
        if request.method == "POST" and request.path == REFRESH:
            if self.first <= self.next_number() <= self.last:
                return JsonResponse({"detail": "Service unavailable (outage)"}, status=503)
        return self.get_response(request)
