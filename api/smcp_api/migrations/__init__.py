"""Alembic migrations of the smcp API store (run by the service at start)."""
