"""Request bodies: authenticated first, bounded in size and depth, parsed off the event loop.

`BodyGuardMiddleware` sees every HTTP request that carries a body, before any route does:

1. under `/api/v1` it checks the bearer token first, with the routes' own check (the `authenticate` that
   `main.py` passes: `deps.authenticate`; this module imports nothing of the routes' layer), so a body sent
   without a valid token is never read, let alone parsed (401);
2. a `Content-Length` over `max_body_bytes` is refused at once, and the bytes really received are counted
   while they stream in (a lying or absent `Content-Length`, chunked bodies): 413 naming the limit;
3. JSON and YAML are parsed in a worker thread, never on the event loop. YAML (`Content-Type:
   application/yaml`) is first walked event by event (`check_yaml_events`): no anchors or aliases, no tags but
   the JSON-compatible ones; both have a nesting limit of `max_body_depth` (422 naming the limit). YAML is handed
   on as JSON.

`clip_depth` is the read side: a value stored before these limits existed is shown clipped instead of making
every listing answer 500 (pydantic refuses to serialise values nested deeper than 255 levels).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import anyio
import yaml
from fastapi import HTTPException
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_TYPES = (b"application/json", b"")
YAML_TYPES = (b"application/yaml", b"application/x-yaml", b"text/yaml")
AUTHENTICATED_PREFIX = "/api/v1/"
PARSERS = 1  # YAML bodies parsed at once: parsing holds the GIL, a second thread adds only event-loop latency
SHOWN_DEPTH = 128  # the highest max_body_depth allowed; well below pydantic's serialisation limit of 255
TOO_DEEP_SHOWN = f"<nested deeper than {SHOWN_DEPTH} levels: not shown; replace this value with a flatter one>"
YAML_TAGS = frozenset(
    {"!", *(f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str", "seq", "map"))}
)


class BodyRefused(Exception):
    """A body that is not handed on: its status and a message naming the limit and the fix."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# ---------------------------------------------------------------- depth
def value_depth(value: Any, limit: int) -> int:
    """Nesting of lists and mappings (a scalar is 0, `{}` is 1), walked without recursion; stops past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def clip_depth(value: Any) -> Any:
    """`value` itself when it is at most SHOWN_DEPTH deep, else a copy whose deeper parts are a placeholder."""
    if value_depth(value, SHOWN_DEPTH) <= SHOWN_DEPTH:
        return value

    def clip(item: Any, room: int) -> Any:  # recursion bounded by SHOWN_DEPTH
        if isinstance(item, dict | list) and room == 0:
            return TOO_DEEP_SHOWN
        if isinstance(item, dict):
            return {key: clip(child, room - 1) for key, child in item.items()}
        if isinstance(item, list):
            return [clip(child, room - 1) for child in item]
        return item

    return clip(value, SHOWN_DEPTH)


# Output fields holding stored free-form values (host vars, cluster options, job params, event data).
StoredMap = Annotated[dict[str, Any], AfterValidator(clip_depth)]
StoredList = Annotated[list[Any], AfterValidator(clip_depth)]


def _too_deep(limit: int) -> BodyRefused:
    return BodyRefused(
        422,
        f"body: nested deeper than {limit} levels of lists and mappings (the limit, setting max_body_depth, "
        "SMCP_MAX_BODY_DEPTH); send a flatter document",
    )


# ---------------------------------------------------------------- YAML
# libyaml (PyYAML's C parser) when PyYAML was built with it, as the venv's wheel is: about 3 times faster.
_SafeBase: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class JsonYamlLoader(_SafeBase):  # type: ignore[misc]
    """The safe loader, unquoted dates kept as text (JSON has no date type). Only after `check_yaml_events`."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


JsonYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def check_yaml_events(text: str, max_depth: int) -> None:
    """Walk the parser's events before anything is built: anchors and aliases, tags beyond JSON's, nesting.

    An alias is refused at the anchor that it would name, before one value is constructed, so a "billion laughs"
    document costs what its few hundred bytes cost to read; past `max_depth` the walk stops at once.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_SafeBase):
        anchor = getattr(event, "anchor", None)
        tag = getattr(event, "tag", None)
        if anchor is not None or (tag is not None and tag not in YAML_TAGS):
            where = f"line {event.start_mark.line + 1}, column {event.start_mark.column + 1}"
            if anchor is None:
                raise BodyRefused(
                    422,
                    f"body: YAML tag '{tag}' at {where} is not accepted; use plain strings, numbers, booleans, null, "
                    "lists and mappings",
                )
            what = f"alias '*{anchor}'" if isinstance(event, yaml.AliasEvent) else f"anchor '&{anchor}'"
            raise BodyRefused(
                422,
                f"body: YAML aliases are not accepted ({what} at {where}); write the value out in full or send JSON",
            )
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            if depth > max_depth:
                raise _too_deep(max_depth)
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1


def _mark(prefix: str, mark: Any) -> str:
    return "" if mark is None else f"{prefix} line {mark.line + 1}, column {mark.column + 1}"


def yaml_to_json(body: bytes, max_depth: int) -> bytes:
    """The YAML document as JSON bytes, or BodyRefused (422) naming the problem and where it is."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(422, f"body: not UTF-8 ({exc.reason} at byte {exc.start}); send UTF-8 YAML") from exc
    if not text.strip():
        return b"null"
    try:
        check_yaml_events(text, max_depth)
        data = yaml.load(text, Loader=JsonYamlLoader)  # noqa: S506 (a safe loader: SafeConstructor)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        if "maximum nesting depth" in problem:  # libyaml's own limit (1000), met while scanning ahead
            raise _too_deep(max_depth) from exc
        where = _mark(" at", getattr(exc, "problem_mark", None))
        context = getattr(exc, "context", None)
        if context:  # "while parsing a flow sequence" that starts at line 1, column 7
            problem += f", {context}{_mark(' that starts at', getattr(exc, 'context_mark', None))}"
        raise BodyRefused(422, f"body: malformed YAML{where} ({problem}); fix the document or send JSON") from exc
    try:
        return json.dumps(data, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:  # .nan/.inf, or a mapping used as a key
        raise BodyRefused(
            422, f"body: YAML value not representable in JSON ({exc}); use finite numbers and string keys"
        ) from exc


# ---------------------------------------------------------------- JSON
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_json(body: bytes, max_depth: int) -> None:
    """Refuse JSON nested deeper than `max_depth` or with NaN/Infinity; malformed JSON is left to the route."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError as exc:  # far deeper than any limit: the C scanner stops itself
        raise _too_deep(max_depth) from exc
    except ValueError as exc:
        if "is not a JSON number" in str(exc):
            raise BodyRefused(422, f"body: {exc}; send finite numbers") from exc
        return  # malformed: FastAPI answers 422 with the position
    if value_depth(data, max_depth) > max_depth:
        raise _too_deep(max_depth)


# ---------------------------------------------------------------- middleware
class BodyGuardMiddleware:
    """A pure ASGI middleware (see the module docstring); requests without a body pass untouched."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_body_depth: int,
        *,
        authenticate: Callable[[Scope], Awaitable[None]],
    ) -> None:
        self.app = app
        self.authenticate = authenticate  # raises HTTPException (401) for a missing or unknown token
        self.max_body_bytes = max_body_bytes
        self.max_body_depth = max_body_depth
        self._parsers: anyio.CapacityLimiter | None = None  # made on first use, inside the event loop

    async def _yaml_to_json(self, body: bytes) -> bytes:
        """In a worker thread, at most PARSERS at once, so the event loop keeps its share of the GIL."""
        if self._parsers is None:
            self._parsers = anyio.CapacityLimiter(PARSERS)
        return await anyio.to_thread.run_sync(yaml_to_json, body, self.max_body_depth, limiter=self._parsers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        length = headers.get(b"content-length")
        if scope["type"] != "http" or (length in (None, b"0") and b"transfer-encoding" not in headers):
            await self.app(scope, receive, send)
            return
        try:
            if scope["path"].startswith(AUTHENTICATED_PREFIX):
                await self.authenticate(scope)
            body = await self._read(length, receive)
            if body is None:  # the client went away
                return
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype in YAML_TYPES:
                body = await self._yaml_to_json(body)
                scope = _with_json_headers(scope, len(body))
            elif ctype in JSON_TYPES or ctype.endswith(b"+json"):
                await run_in_threadpool(check_json, body, self.max_body_depth)  # C json: milliseconds
        except BodyRefused as exc:
            await _reply(send, exc.status, exc.detail)
            return
        except HTTPException as exc:  # from the token check
            await _reply(send, exc.status_code, exc.detail, exc.headers)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, length: bytes | None, receive: Receive) -> bytes | None:
        limit = self.max_body_bytes
        refused = BodyRefused(
            413,
            f"body: larger than {limit} bytes (the limit, setting max_body_bytes, SMCP_MAX_BODY_BYTES); "
            "send a smaller document",
        )
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise refused
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise refused
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _with_json_headers(scope: Scope, length: int) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(length).encode())]
    return dict(scope, headers=headers)


def _replay(body: bytes, receive: Receive) -> Callable[[], Any]:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _reply(send: Send, status: int, detail: Any, headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


__all__ = [
    "BodyGuardMiddleware",
    "BodyRefused",
    "JsonYamlLoader",
    "StoredList",
    "StoredMap",
    "check_yaml_events",
    "clip_depth",
    "value_depth",
]
