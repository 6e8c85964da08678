# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Bootstrap tokens for ``kubeadm join``: create one, or reuse ours while it has time left.

A bootstrap token is a Secret ``bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token`` in
kube-system (https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/) with the data
kubeadm writes for its join tokens: ``token-id``, ``token-secret``, ``expiration`` (RFC 3339),
``usage-bootstrap-authentication`` and ``usage-bootstrap-signing`` ("true") and ``auth-extra-groups``
``system:bootstrappers:kubeadm:default-node-token`` (the group kubeadm's RBAC lets create CSRs that are
auto-approved). Ours carry the label ``app.kubernetes.io/managed-by=smcp`` so we never reuse or delete a
token somebody else made. Works on plain dicts through ``client.request`` (see kube_client).
"""

from __future__ import annotations

import datetime
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from ansible_collections.smcp.platform.plugins.module_utils.kube_client import (
    KubeError,
    decode_b64_map,
    encode_b64_map,
    path_of,
)

NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"  # noqa: S105 - a Secret type, not a secret
MANAGED_LABEL = "app.kubernetes.io/managed-by"
MANAGED_VALUE = "smcp"
DEFAULT_GROUPS = ("system:bootstrappers:kubeadm:default-node-token",)
DEFAULT_USAGES = ("authentication", "signing")
USAGES = ("authentication", "signing")
_ALPHABET = string.ascii_lowercase + string.digits
_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")


class TokenError(ValueError):
    """Bad input, naming the option and the fix."""


@dataclass
class Token:
    token_id: str
    secret: str
    expiration: datetime.datetime
    name: str

    @property
    def value(self) -> str:
        return f"{self.token_id}.{self.secret}"

    def public(self) -> dict[str, str]:
        """What may be shown: never the secret part."""
        return {"id": self.token_id, "secret_name": self.name, "expiration": rfc3339(self.expiration)}


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime | None:
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def parse_duration(option: str, value: Any) -> int:
    """Seconds from ``3600``, ``"3600"``, ``"1h"``, ``"90m"``, ``"1h30m"``."""
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    match = _DURATION_RE.match(text)
    if not text or not match:
        raise TokenError(f"{option}={value!r} is not a duration; use seconds or e.g. 1h, 30m, 1h30m")
    hours, minutes, seconds = (int(x or 0) for x in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def generate(rand: Any = secrets) -> tuple[str, str]:
    """A fresh (id, secret) pair: [a-z0-9]{6} and [a-z0-9]{16}, from a CSPRNG."""
    token_id = "".join(rand.choice(_ALPHABET) for _unused in range(6))
    secret = "".join(rand.choice(_ALPHABET) for _unused in range(16))
    return token_id, secret


def check_options(usages: list[str], groups: list[str], ttl: int, min_remaining: int) -> None:
    unknown = sorted(set(usages) - set(USAGES))
    if unknown or "authentication" not in usages:
        raise TokenError(
            f"usages={usages!r}: kubeadm join needs 'authentication' (and 'signing' for discovery); "
            f"allowed: {', '.join(USAGES)}"
        )
    for group in groups:
        if not _GROUP_RE.match(group):
            raise TokenError(f"groups: {group!r} must start with system:bootstrappers: (bootstrap token rules)")
    if ttl <= 0:
        raise TokenError(f"ttl={ttl}: must be positive (a token without expiry is never created here)")
    if min_remaining >= ttl:
        raise TokenError(
            f"min_remaining={min_remaining} s must be shorter than ttl={ttl} s, or every run would make a new token"
        )


def secret_body(
    token_id: str, secret: str, expiration: datetime.datetime, usages: list[str], groups: list[str], description: str
) -> dict[str, Any]:
    data = {
        "token-id": token_id,
        "token-secret": secret,
        "expiration": rfc3339(expiration),
        "description": description,
    }
    for usage in sorted(usages):
        data[f"usage-bootstrap-{usage}"] = "true"
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE,
        "metadata": {
            "name": f"bootstrap-token-{token_id}",
            "namespace": NAMESPACE,
            "labels": {MANAGED_LABEL: MANAGED_VALUE},
        },
        "data": encode_b64_map(data),
    }


def _as_token(item: dict[str, Any]) -> tuple[Token | None, dict[str, str]]:
    data = decode_b64_map(item.get("data"))
    expiration = parse_rfc3339(data.get("expiration", ""))
    if item.get("type") != SECRET_TYPE or not data.get("token-id") or not data.get("token-secret") or not expiration:
        return None, data
    name = item.get("metadata", {}).get("name", "")
    return Token(data["token-id"], data["token-secret"], expiration, name), data


def reusable(
    items: list[dict[str, Any]], now: datetime.datetime, min_remaining: int, usages: list[str], groups: list[str]
) -> Token | None:
    """Our token with the same usages and groups and the most time left, if that is at least min_remaining."""
    best: Token | None = None
    for item in items:
        token, data = _as_token(item)
        if token is None or token.name != f"bootstrap-token-{token.token_id}":
            continue
        has_usages = {u for u in USAGES if data.get(f"usage-bootstrap-{u}") == "true"}
        has_groups = [g for g in data.get("auth-extra-groups", "").split(",") if g]
        if has_usages != set(usages) or sorted(has_groups) != sorted(groups):
            continue
        if (token.expiration - now).total_seconds() < min_remaining:
            continue
        if best is None or token.expiration > best.expiration:
            best = token
    return best


def expired(items: list[dict[str, Any]], now: datetime.datetime) -> list[str]:
    """Names of our expired tokens (kube-controller-manager's token cleaner removes them too, eventually)."""
    names = []
    for item in items:
        token, _data = _as_token(item)
        if token is not None and token.expiration <= now:
            names.append(token.name)
    return sorted(names)


def ensure(
    client: Any,
    ttl: int,
    min_remaining: int,
    usages: list[str],
    groups: list[str],
    description: str,
    check_mode: bool = False,
    now: datetime.datetime | None = None,
    rand: Any = secrets,
) -> dict[str, Any]:
    """Reuse or create a token. Returns {changed, created, token (Token or None), removed}."""
    check_options(usages, groups, ttl, min_remaining)
    now = now or now_utc()
    listing = client.request(
        "GET", path_of("secrets", namespace=NAMESPACE), query={"labelSelector": f"{MANAGED_LABEL}={MANAGED_VALUE}"}
    )
    items = listing.get("items") or []
    removed = expired(items, now)
    if not check_mode:
        for name in removed:
            try:
                client.request("DELETE", path_of("secrets", name, NAMESPACE))
            except KubeError as exc:
                if exc.status != 404:
                    raise
    token = reusable(items, now, min_remaining, usages, groups)
    if token is not None:
        return {"changed": bool(removed), "created": False, "token": token, "removed": removed}
    if check_mode:
        return {"changed": True, "created": True, "token": None, "removed": removed}
    for _attempt in range(5):
        token_id, secret = generate(rand)
        expiration = now + datetime.timedelta(seconds=ttl)
        body = secret_body(token_id, secret, expiration, usages, groups, description)
        try:
            client.request("POST", path_of("secrets", namespace=NAMESPACE), body=body)
        except KubeError as exc:
            if exc.status == 409:  # id collision: try another one
                continue
            raise
        token = Token(token_id, secret, expiration, body["metadata"]["name"])
        return {"changed": True, "created": True, "token": token, "removed": removed}
    raise KubeError("could not create a bootstrap token: 5 generated ids already existed")
