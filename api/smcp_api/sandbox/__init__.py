"""Sandbox hosts: real Debian 12 machines (systemd, SSH, sudo, python3) as podman containers on this machine.

Public API (the CLI and `smcpctl up --sandbox N` use it):

- ``up(name, hosts, subnet=None, progress=None) -> SandboxInfo``
- ``down(name, progress=None) -> bool`` and ``down_all(progress=None) -> list[str]``
- ``status(name=None) -> list[SandboxInfo]``

Errors the user can fix raise ``SandboxError`` (one line: the problem and the fix).
"""

from __future__ import annotations

from smcp_api.sandbox.core import Progress, down, down_all, load, status, up
from smcp_api.sandbox.model import DEFAULT_NAME, Host, SandboxError, SandboxInfo

__all__ = [
    "DEFAULT_NAME",
    "Host",
    "Progress",
    "SandboxError",
    "SandboxInfo",
    "down",
    "down_all",
    "load",
    "status",
    "up",
]
