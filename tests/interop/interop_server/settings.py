"""Settings of the interop test server: SimpleJWT with 3-second access tokens, rotation and the
blacklist, SQLite in a temporary folder, bound to 127.0.0.1 only. Configured by run.sh through
environment variables:

- INTEROP_DB: path of the SQLite database (required).
- INTEROP_LOG: path of the JSON-lines request log (required, see middleware.py).
- INTEROP_SECRET_KEY: signing key (HS256), random per run.
"""
import os
from datetime import timedelta

SECRET_KEY = os.environ.get("INTEROP_SECRET_KEY", "interop-test-only-" + "x" * 48)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

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

ROOT_URLCONF = "interop_server.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["INTEROP_DB"],
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

# Quiet server: runserver's own access lines still go to its stderr (run.sh keeps them in a file).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
