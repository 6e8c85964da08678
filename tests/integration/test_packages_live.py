"""The shared package install (role smcp.platform.smcp, entry point packages) on a just-built image.

A fresh sandbox image ships no package index while the lists directory and apt's success stamp carry
a recent time: apt's own cache_valid_time then skips the refresh and every install fails with
"No package matching ...". The shared entry point must refresh because no index file is fresh, and a
second run must change nothing.

Run with `pytest -m sandbox tests/integration/test_packages_live.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.sandbox_ssh import ssh_argv

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
NAME = "ops-pkg"
PACKAGE = "jq"  # not in the sandbox image
PLAYBOOK = [
    {
        "name": "Shared package install",
        "hosts": "all",
        "gather_facts": False,
        "become": True,
        "tasks": [
            {
                "name": "Install through the shared entry point",
                "ansible.builtin.import_role": {"name": "smcp.platform.smcp", "tasks_from": "packages"},
                "vars": {"smcp_packages": [PACKAGE]},
            }
        ],
    }
]


def _run(*cmd: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, env=env, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("packages")
    info = json.loads(_run(SMCPCTL, "sandbox", "up", "--hosts", "1", "--name", NAME, "--json").stdout)
    try:
        (node,) = info["hosts"]
        (tmp / "site.yml").write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
        yield {"info": info, "node": node, "tmp": tmp}
    finally:
        _run(SMCPCTL, "sandbox", "down", "--name", NAME, check=False)


def _ssh(host, command: str) -> subprocess.CompletedProcess[str]:
    node = host["node"]
    return _run(
        *ssh_argv(node),
        command,
        check=False,
    )


def _playbook(host) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": str(ROOT / ".venv" / "bin") + ":/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(Path.home()),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
        "ANSIBLE_HOME": os.environ.get("ANSIBLE_HOME", str(ROOT / ".ansible")),
    }
    return _run(
        str(ROOT / ".venv/bin/ansible-playbook"),
        "-i",
        host["info"]["inventory"],
        str(host["tmp"] / "site.yml"),
        check=False,
        env=env,
    )


def test_install_refreshes_an_index_a_fresh_image_lacks(host):
    # The state of a just-built image: no index file, lists directory and success stamp touched now.
    setup = _ssh(
        host,
        "sudo sh -ec 'rm -f /var/lib/apt/lists/*_Packages* /var/lib/apt/lists/*Release*; "
        "mkdir -p /var/lib/apt/periodic; touch /var/lib/apt/lists /var/lib/apt/periodic/update-success-stamp; "
        f"dpkg-query -W {PACKAGE} 2>/dev/null && exit 3 || true'",
    )
    assert setup.returncode == 0, setup.stderr
    first = _playbook(host)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert "changed=1" in first.stdout.split("PLAY RECAP")[-1]
    installed = _ssh(host, f"dpkg-query -W -f='${{Status}}' {PACKAGE}")
    assert installed.stdout == "install ok installed", installed.stdout + installed.stderr
    assert _ssh(host, "ls /var/lib/apt/lists | grep -c _Packages").stdout.strip() not in ("", "0")

    again = _playbook(host)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]
