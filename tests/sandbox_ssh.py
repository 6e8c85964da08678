"""ssh to a sandbox host from a live test, as every live test does it.

``host`` is one entry of ``hosts`` in ``smcpctl sandbox up --json`` (it carries ``ip``, ``user``,
``key`` and ``known_hosts``). Host keys are checked against the sandbox's pinned known_hosts
(StrictHostKeyChecking=yes), nothing prompts (BatchMode) and no connection is shared between calls.
"""

from __future__ import annotations


def ssh_argv(host: dict, known_hosts: str | None = None) -> list[str]:
    """The ssh command line up to the remote command; ``known_hosts`` replaces the sandbox's file."""
    return [
        "ssh",
        "-i",
        host["key"],
        "-o",
        f"UserKnownHostsFile={known_hosts or host['known_hosts']}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlPath=none",
        f"{host['user']}@{host['ip']}",
    ]
