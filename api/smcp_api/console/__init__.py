"""The web console (issue 15): server-rendered pages under /console, served by smcp-api itself.

Pages are Jinja2 templates; the small live parts (a job's log and per-host progress) use htmx (vendored in
static/, no CDN) and the browser's EventSource on the API's own event stream. Every read and write goes through
the /api/v1 routes in process (client.py), so the console adds no business rules of its own. docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from smcp_api.console.pages import register, router

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """The console's pages, its static files (/console/static) and `/` sending a browser to the console."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    register(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)
