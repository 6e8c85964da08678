"""Security suite: a job is data-driven, isolated and leaves nothing behind (issue 12).

Jobs run real ansible-runner and the real launcher (jobs/launch.py) on a probe playbook with a local
connection. Each test asserts the refusal or the isolation AND the absence of the effect: canary files that a
template would create are never created, the job's user cannot read the API's files nor another job's
directory, no secret reaches events or stdout, and a killed service leaves no key material on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from smcp_api.jobs import isolation

REPO = Path(__file__).resolve().parents[2]
CANARY_EXPR = "{{ lookup('ansible.builtin.pipe', 'touch %s') }}"

SLOW = """
- name: Slow local stand-in
  hosts: all
  gather_facts: false
  connection: local
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Wait a long time
      ansible.builtin.command: sleep 120
      changed_when: false
"""
PROBE = """
- name: Isolation probe
  hosts: all
  gather_facts: false
  connection: local
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Who runs the job
      ansible.builtin.command: id -un
      register: whoami
      changed_when: false
    - name: Try to read each file listed in probe-paths.txt
      ansible.builtin.command: cat {{ item }}
      loop: "{{ lookup('ansible.builtin.file', playbook_dir ~ '/probe-paths.txt').splitlines() }}"
      register: reads
      failed_when: false
      changed_when: false
    - name: Report
      ansible.builtin.debug:
        msg: >-
          PROBE {{ {'user': whoami.stdout, 'home': lookup('ansible.builtin.env', 'HOME'),
          'readable': reads.results | selectattr('rc', 'equalto', 0) | map(attribute='item') | list,
          'denied': reads.results | selectattr('rc', 'ne', 0) | map(attribute='item') | list,
          'secret_env': lookup('ansible.builtin.env', 'SMCP_SECRET_KEY', default=''),
          'node_ip': smcp_node_ip | default(''), 'registry': smcp_image_registry | default('')} | to_json }}
"""


@pytest.fixture
def probe_collections(reachable_dir) -> Path:
    root = reachable_dir() / "collections"
    coll = root / "ansible_collections" / "smcp" / "platform"
    (coll / "playbooks").mkdir(parents=True)
    (coll / "playbooks" / "certs.yml").write_text("---" + PROBE)
    (coll / "playbooks" / "prepare_hosts.yml").write_text("---" + SLOW)
    (coll / "playbooks" / "probe-paths.txt").write_text("")
    (coll / "roles").symlink_to(REPO / "roles")
    shutil.copy(REPO / "galaxy.yml", coll / "galaxy.yml")
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return root


def _probe(api: Any, job_id: str) -> dict[str, Any]:
    events = api.get(f"/api/v1/jobs/{job_id}/events?limit=5000").json()
    (msg,) = [e["data"]["res"]["msg"] for e in events if e["event"] == "runner_on_ok" and e["task"] == "Report"]
    return json.loads(msg.split("PROBE ", 1)[1])


def _wait_started(api: Any, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while not any(e["event"] == "runner_on_start" for e in api.get(f"/api/v1/jobs/{job_id}/events").json()):
        assert time.monotonic() < deadline, api.get(f"/api/v1/jobs/{job_id}").json()
        time.sleep(0.1)


def test_job_cannot_read_the_api_files_nor_another_job_and_templates_stay_data(
    start_api, probe_collections, reachable_dir, job_user_prefix, private_key, monkeypatch
):
    data_dir = reachable_dir() / "data"  # reachable: only the API's own modes protect its files
    # In /tmp, where a job user could create them if a template ever ran.
    canary_host = Path("/tmp") / f"smcp-canary-{uuid.uuid4().hex}"
    canary_extra = Path("/tmp") / f"smcp-canary-{uuid.uuid4().hex}"
    # The service's environment must not reach jobs: the probe reports this variable if it did.
    monkeypatch.setenv("SMCP_SECRET_KEY", "env-canary-never-in-a-job")
    api = start_api(start_worker=True, collections_path=probe_collections, data_dir=data_dir, workers=2)
    key = private_key()
    cred = api.credential("k", key)
    slow_host = api.host("slow0", cred["id"], roles=["etcd", "control_plane"])
    probe_host = api.host(
        "probe0", cred["id"], roles=["etcd", "control_plane"], vars={"smcp_node_ip": CANARY_EXPR % canary_host}
    )
    slow = api.post(
        "/api/v1/jobs",
        json={"operation": "prepare_hosts", "cluster_id": api.cluster("slowc", [slow_host["id"]])["id"]},
    ).json()
    _wait_started(api, slow["id"])
    jobs_dir = api.services.settings.jobs_dir
    (other,) = [p for p in jobs_dir.iterdir()]  # the running job's private directory
    assert stat.S_IMODE(other.stat().st_mode) == 0o700
    targets = [
        data_dir / "secret.key",
        data_dir / "admin.token",
        data_dir / "smcp.db",
        other / "inventory" / "hosts.yml",
        other / "launch.json",
    ]
    targets = [t for t in targets if t.exists()]
    assert len(targets) >= 4, targets
    (probe_collections / "ansible_collections/smcp/platform/playbooks/probe-paths.txt").write_text(
        "".join(f"{t}\n" for t in targets)
    )
    cluster = api.cluster("probec", [probe_host["id"]])
    extra = {"smcp_image_registry": CANARY_EXPR % canary_extra}
    job = api.post(
        "/api/v1/jobs", json={"operation": "certs", "cluster_id": cluster["id"], "params": {"extra_vars": extra}}
    ).json()
    done = api.wait_job(job["id"], timeout=120)
    assert done["status"] == "successful", api.get(f"/api/v1/jobs/{job['id']}/stdout").text[-2000:]
    probe = _probe(api, job["id"])
    assert probe["user"].startswith(job_user_prefix) and probe["user"] != "root", probe
    assert probe["readable"] == [] and sorted(probe["denied"]) == sorted(map(str, targets)), probe
    assert probe["home"].startswith(str(jobs_dir)) and probe["secret_env"] == ""
    # Values from the API arrive as data: the expressions are printed, never evaluated.
    assert probe["node_ip"] == CANARY_EXPR % canary_host and probe["registry"] == CANARY_EXPR % canary_extra
    assert not canary_host.exists() and not canary_extra.exists()
    # No secret in what the store keeps of the job.
    events = json.dumps(api.get(f"/api/v1/jobs/{job['id']}/events?limit=5000").json())
    everything = events + api.get(f"/api/v1/jobs/{job['id']}/stdout").text
    secrets = [
        api.admin["Authorization"].split()[1],
        (data_dir / "secret.key").read_text().strip(),
        *key.strip().splitlines()[1:-1],
    ]
    assert not [s for s in secrets if s and s in everything]
    api.post(f"/api/v1/jobs/{slow['id']}/cancel")
    assert api.wait_job(slow["id"], timeout=60)["status"] == "canceled"
    assert list(jobs_dir.iterdir()) == []


def _http(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {token}"})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def _start_service(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "smcp-api"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    raise AssertionError(log.read_text()[-2000:])


def test_a_killed_service_leaves_no_key_material_and_recovers(
    reachable_dir, job_user_prefix, fake_collections, private_key, tmp_path
):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = reachable_dir()
    env = {
        "PATH": os.environ["PATH"],
        "SMCP_DATA_DIR": str(base / "data"),
        "SMCP_JOBS_DIR": str(base / "jobs"),
        "SMCP_JOB_USER_PREFIX": job_user_prefix,
        "SMCP_COLLECTIONS_PATH": str(fake_collections),
        "SMCP_ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "SMCP_WORKERS": "2",
        "SMCP_HOST_KEY_SCAN_TIMEOUT": "1",
    }
    log = tmp_path / "api.log"
    api = _start_service(env, port, log)
    url = f"http://127.0.0.1:{port}/api/v1"
    token = (base / "data" / "admin.token").read_text().strip()
    key = private_key()
    try:
        cred = _http(f"{url}/credentials", token, "POST", {"name": "k", "private_key": key})
        host = _http(
            f"{url}/hosts",
            token,
            "POST",
            {"name": "crash0", "address": "127.0.0.9", "credential_id": cred["id"], "roles": ["etcd"]},
        )
        job = _http(f"{url}/jobs", token, "POST", {"operation": "prepare_hosts", "host_ids": [host["id"]]})
        deadline = time.monotonic() + 60
        while not any(e["event"] == "runner_on_start" for e in _http(f"{url}/jobs/{job['id']}/events", token) or []):
            assert time.monotonic() < deadline, _http(f"{url}/jobs/{job['id']}", token)
            time.sleep(0.2)
        key_lines = [line for line in key.strip().splitlines()[1:-1] if len(line) > 20]
        on_disk = _grep(base, key_lines)
        assert on_disk == [], f"private key material on disk while the job runs: {on_disk}"
        os.kill(api.pid, signal.SIGKILL)  # the service dies mid-job
        api.wait()
        api = _start_service(env, port, log)
        done = _http(f"{url}/jobs/{job['id']}", token)
        assert done["status"] == "failed" and done["status_reason"].startswith("interrupted"), done
        assert list((base / "jobs").iterdir()) == []  # the job's directory is gone
        uids = {u.pw_uid for u in _job_users(job_user_prefix)}
        assert isolation.processes_of(uids) == []  # and so are its processes (ssh-agent included)
        assert _grep(base, key_lines) == []
        assert not [line for line in key_lines if line in log.read_text()]
    finally:
        api.kill()
        api.wait()


def _grep(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                text = path.read_bytes().decode("utf-8", "replace")
                found += [f"{path}: {n[:12]}..." for n in needles if n in text]
        except OSError:
            continue
    return found


def _job_users(prefix: str) -> list[Any]:
    import pwd

    return [e for e in pwd.getpwall() if e.pw_name.startswith(prefix)]
