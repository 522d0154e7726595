"""A minimal Django + DRF + SimpleJWT server for jwt-refresh's interop test."""
