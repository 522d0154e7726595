"""WSGI entry point of the interop test server, for gunicorn (see run.sh)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "interop_server.settings")

application = get_wsgi_application()
