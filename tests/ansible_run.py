"""Run a play with this checkout's ansible-playbook, collection and config, on the machine itself.

One runner for the unit tests that exercise a role end to end on localhost (connection local): the inventory
and play are written into the test's temp dir, the output is plain text (default callback, no colour), and the
result is returned for the test to assert on (nothing is checked here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"


def local_inventory(host: str = "localhost", **groups_and_vars: Any) -> dict[str, Any]:
    """An inventory with one host reached with connection local and this interpreter; extra keys go to `all`."""
    hostvars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"hosts": {host: hostvars}, **groups_and_vars}}


def run_play(
    tmp_path: Path,
    play: list[dict[str, Any]] | str,
    *args: str,
    inventory: dict[str, Any] | None = None,
    extra_vars: dict[str, Any] | None = None,
    name: str = "play.yml",
    timeout: int = 300,
) -> subprocess.CompletedProcess[str]:
    """Write `play` (a list of plays, or YAML text) and the inventory into tmp_path and run ansible-playbook."""
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(inventory if inventory is not None else local_inventory()))
    playbook = tmp_path / name
    playbook.write_text(play if isinstance(play, str) else yaml.safe_dump(play))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_FORCE_COLOR="0",
    )
    cmd = [str(PLAYBOOK), "-i", str(inv)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return subprocess.run(
        [*cmd, *args, str(playbook)], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
