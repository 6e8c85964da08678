"""20 sandbox hosts refresh their package lists at the same moment through the shared apt cache.

apt-cacher-ng revalidates an InRelease on every request and, when two revalidations collide within a second,
answers one client with an error ("Failure to move file .../InRelease ... File exists" in its log; see
smcp_api.sandbox.aptcache). What a user needs is that every host still gets every index: each host's
`apt-get update` must finish (bounded by `timeout`, so a stall fails instead of hanging) with exit 0 and no
error or warning line from apt, and the host must then hold, for each of the image's three suites, its signed
release file and its package index. Collisions the cache logged are printed, not failed on: the hosts' apt retries them.
Needs root and podman: `pytest -m sandbox`; heavy (20 hosts).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from smcp_api.sandbox import aptcache

from tests.sandbox_ssh import ssh_argv

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
HOSTS = 20
SUITES = ("bookworm", "bookworm-updates", "bookworm-security")


def _logs() -> dict[Path, int]:
    log_dir = aptcache.conf_dir() / "log"
    return {path: path.stat().st_size for path in log_dir.glob("apt-cacher.*")} if log_dir.is_dir() else {}


@pytest.fixture(scope="module")
def box():
    name = f"apt-{secrets.token_hex(3)}"
    up = subprocess.run(
        [SMCPCTL, "sandbox", "up", "--hosts", str(HOSTS), "--name", name, "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        yield json.loads(up.stdout)
    finally:
        subprocess.run([SMCPCTL, "sandbox", "down", "--name", name], capture_output=True, timeout=600, check=False)


def _update(info: dict, host: dict) -> subprocess.CompletedProcess[str]:
    # Lists removed first: every host fetches every index through the cache, all at the same moment.
    command = (
        "sudo -n rm -rf /var/lib/apt/lists/* && sudo -n timeout 240 apt-get update -q; echo update-rc=$?;"
        " echo LISTS; ls /var/lib/apt/lists"
    )
    return subprocess.run(
        [
            *ssh_argv(host),
            command,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_twenty_hosts_refresh_their_package_lists_at_once(box):
    assert len(box["hosts"]) == HOSTS
    before = _logs()
    with ThreadPoolExecutor(max_workers=HOSTS) as pool:
        runs = list(pool.map(lambda h: _update(box, h), box["hosts"]))
    results = {host["name"]: res for host, res in zip(box["hosts"], runs, strict=True)}
    failed = {
        name: res.stdout[-600:] + res.stderr[-600:] for name, res in results.items() if "update-rc=0" not in res.stdout
    }
    assert not failed, f"{len(failed)} of {HOSTS} hosts did not refresh their package lists: {failed}"
    for name, res in results.items():
        output, _, listing = res.stdout.partition("\nLISTS\n")
        complaints = [line for line in output.splitlines() if line.startswith(("E:", "W:"))]
        assert not complaints, (name, complaints)
        lists = set(listing.split())
        for suite in SUITES:
            signed = [f for f in lists if f.endswith((f"_dists_{suite}_InRelease", f"_dists_{suite}_Release"))]
            packages = [f for f in lists if f.endswith(f"_dists_{suite}_main_binary-amd64_Packages")]
            assert signed and packages, (name, suite, sorted(lists))
    added = ""
    for path in _logs():
        with path.open("rb") as fh:
            fh.seek(before.get(path, 0))
            added += fh.read().decode(errors="replace")
    collisions = added.count("Failure to move file")
    print(f"apt-cacher-ng logged {collisions} InRelease collision(s) that the hosts' apt retried")
