"""Domain errors: what went wrong, in words a user can act on (the field, the value, the fix), without HTTP.

Services and routes raise these; `smcp_api.main` maps each class to its HTTP status in one place
(`STATUS`), answering `{"detail": message}` like every other error of the API.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `str(exc)` is the message shown to the user."""


class NotFound(DomainError):
    """The id names nothing (404)."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} '{ident}' does not exist; list them with GET /api/v1/{kind}s")


class Conflict(DomainError):
    """The request clashes with the store's state: a busy target, a taken name, a resource in use (409)."""


class Unprocessable(DomainError):
    """The request is well formed but refers to, or asks for, something that cannot be done (422)."""


class Unavailable(DomainError):
    """Something the service needs is missing here (503), e.g. the smcp.platform collection."""


class Unreachable(DomainError):
    """A host the request is about did not answer (504 when it timed out, 502 otherwise)."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout
