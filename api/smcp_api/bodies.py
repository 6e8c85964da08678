"""Request bodies in YAML: `Content-Type: application/yaml` is converted to JSON before routing."""

from __future__ import annotations

import json
from typing import Any

import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

YAML_TYPES = (b"application/yaml", b"application/x-yaml", b"text/yaml")
MAX_BODY = 4 * 1024 * 1024


class YamlBodyMiddleware:
    """A pure ASGI middleware: safe_load the YAML body, hand the app JSON; malformed YAML -> 422 naming the line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype not in YAML_TYPES:
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await _reply(send, 413, f"request body larger than {MAX_BODY} bytes; send a smaller document")
                return
        try:
            data: Any = yaml.safe_load(body.decode("utf-8")) if body.strip() else None
            payload = json.dumps(data).encode()
        except (yaml.YAMLError, UnicodeDecodeError, TypeError, ValueError) as exc:
            where = ""
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                where = f" at line {mark.line + 1}, column {mark.column + 1}"
            problem = getattr(exc, "problem", None) or type(exc).__name__
            await _reply(send, 422, f"body: malformed YAML{where} ({problem}); fix the document or send JSON")
            return
        new_headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        new_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        scope = dict(scope, headers=new_headers)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        await self.app(scope, replay, send)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
