"""Settings of the interop test server: SimpleJWT with 3-second access tokens, rotation and the
blacklist, SQLite in a temporary folder, bound to 127.0.0.1 only (gunicorn with several worker
processes and threads, see run.sh). Configured by run.sh through environment variables:

- INTEROP_DB: path of the SQLite database (required).
- INTEROP_LOG: path of the JSON-lines request log (required, see middleware.py).
- INTEROP_SECRET_KEY: signing key (HS256), random per run.
- INTEROP_OUTAGE (optional): "AFTER:COUNT", a token-endpoint outage (see outage.py).
"""
import os
from datetime import timedelta

SECRET_KEY = os.environ.get("INTEROP_SECRET_KEY", "interop-test-only-" + "x" * 48)
DEBUG = False
# 10.0.2.100: the name the firmware of examples/firmware-net uses (QEMU's guestfwd address).
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "10.0.2.100"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
]

MIDDLEWARE = [
    "interop_server.middleware.RequestLogMiddleware",
    "django.middleware.common.CommonMiddleware",
]
if os.environ.get("INTEROP_OUTAGE"):
    # After the request log, so that the log records the outage's 503 answers.
    MIDDLEWARE.append("interop_server.outage.OutageMiddleware")

ROOT_URLCONF = "interop_server.urls"

# SQLite written by several gunicorn workers at once (the refreshes and the blacklist, a login):
# WAL lets readers (every authenticated request reads the user) go on during a write, and
# IMMEDIATE transactions take the write lock when they begin, waiting up to `timeout` seconds for
# it, instead of failing with "database is locked" when a reading transaction tries to write.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["INTEROP_DB"],
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=3),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "LEEWAY": 0,
}

# Quiet server: warnings and errors (a "database is locked", a traceback) go to the server's
# stderr, which run.sh keeps in a file and scans.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
