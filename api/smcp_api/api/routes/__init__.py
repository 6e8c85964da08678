"""One router per resource (full-stack-fastapi-template layout)."""

from __future__ import annotations
