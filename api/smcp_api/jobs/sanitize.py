"""Keep secrets out of stored events and stdout: drop no_log results, redact known secret strings."""

from __future__ import annotations

from typing import Any

CENSORED = {"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result"}
REDACTED = "********"
EVENT_DATA_KEYS = (
    "host",
    "remote_addr",
    "task",
    "task_action",
    "task_path",
    "task_uuid",
    "role",
    "play",
    "play_pattern",
    "playbook",
    "name",
    "res",
    "duration",
    "start",
    "end",
    "ignore_errors",
    "is_conditional",
    "ok",
    "changed",
    "failures",
    "dark",
    "skipped",
    "rescued",
    "ignored",
    "processed",
)


def secret_fragments(secrets: list[str]) -> list[str]:
    """Each secret plus each long line of it (a key can leak line by line), longest first."""
    found: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        found.add(secret.strip())
        found.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= 16)
    return sorted((s for s in found if s), key=len, reverse=True)


def redact(value: Any, fragments: list[str]) -> Any:
    if isinstance(value, str):
        for fragment in fragments:
            if fragment in value:
                value = value.replace(fragment, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v, fragments) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, fragments) for v in value]
    return value


def _no_log(res: Any) -> bool:
    if not isinstance(res, dict):
        return False
    if res.get("_ansible_no_log"):
        return True
    return any(_no_log(item) for item in res.get("results", []) if isinstance(item, dict))


def event_data(event: dict[str, Any], fragments: list[str]) -> dict[str, Any]:
    """The stored form of an ansible-runner event's event_data."""
    raw = event.get("event_data") or {}
    data = {k: raw[k] for k in EVENT_DATA_KEYS if k in raw}
    if "res" in data and _no_log(data["res"]):
        data["res"] = dict(CENSORED)
    if isinstance(data.get("res"), dict):
        data["res"] = {k: v for k, v in data["res"].items() if k != "_ansible_no_log"}
    return redact(data, fragments)  # type: ignore[no-any-return]
