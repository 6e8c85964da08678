"""The sandboxes' recorded state: one state.json per sandbox under the sandbox root."""

from __future__ import annotations

import json
from pathlib import Path

from smcp_api.sandbox.model import (
    NAME_RE,
    SandboxInfo,
)
from smcp_api.sandbox.system import (
    sandbox_root,
)


def sandbox_dir(name: str) -> Path:
    return sandbox_root() / name


def _state_file(name: str) -> Path:
    return sandbox_dir(name) / "state.json"


def load(name: str) -> SandboxInfo | None:
    try:
        return SandboxInfo.from_state(json.loads(_state_file(name).read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save(info: SandboxInfo) -> None:
    path = _state_file(info.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info.to_state(), indent=2) + "\n")
    tmp.replace(path)


def names() -> list[str]:
    root = sandbox_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if NAME_RE.match(p.name) and (p / "state.json").is_file())


def all_states(exclude: str | None = None) -> list[SandboxInfo]:
    return [s for n in names() if n != exclude and (s := load(n)) is not None]
