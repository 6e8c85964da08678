"""Sandbox hosts: real Debian 12 machines (systemd, SSH, sudo, python3) as podman containers on this machine.

Public API (the CLI and `smcpctl up --sandbox N` use it):

- ``up(name, hosts, subnet=None, progress=None) -> SandboxInfo``
- ``down(name, progress=None) -> bool`` and ``down_all(progress=None) -> list[str]``
- ``status(name=None) -> list[SandboxInfo]``
- ``ssh_command(info, host) -> list[str]`` (ssh to a host with the inventory's settings)

One file per layer: ``state`` (the recorded state), ``progress``, ``hostfiles`` (keys, machine-id, apt
proxy given to each host), ``hosts`` (the containers), ``network`` (the podman network, subnets, the
egress guard's coverage), ``lifecycle`` (up, down, status); ``model``, ``system``, ``image``,
``aptcache`` and ``guard`` as before.

Errors the user can fix raise ``SandboxError`` (one line: the problem and the fix).
"""

from __future__ import annotations

from smcp_api.sandbox.hosts import ssh_command
from smcp_api.sandbox.lifecycle import down, down_all, status, up
from smcp_api.sandbox.model import DEFAULT_NAME, Host, SandboxError, SandboxInfo
from smcp_api.sandbox.progress import Progress
from smcp_api.sandbox.state import load

__all__ = [
    "DEFAULT_NAME",
    "Host",
    "Progress",
    "SandboxError",
    "SandboxInfo",
    "down",
    "down_all",
    "load",
    "ssh_command",
    "status",
    "up",
]
