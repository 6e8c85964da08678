"""Artifacts in the store (issue 14): made by one replica's job, served and seeded by any, sha256-checked, bounded.

Real parts: the store is SQLite or PostgreSQL (conftest); jobs run stand-in playbooks through the worker (as a
job user): etcd_backup writes a snapshot into the job's backup dir and the cluster's admin kubeconfig and CA
where the control_plane role leaves them (~/.smcp/clusters/NAME); preflight prints the kubeconfig it was given.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import InvalidToken
from smcp_api import artifacts
from smcp_api.models import Artifact, ArtifactChunk
from smcp_api.security import Vault
from smcp_api.server import rotate_secret_key
from sqlalchemy import select, update

from tests.api.conftest import PLAYBOOKS, REPO

KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: artifact-admin-s3cret}\n"
SNAPSHOT_BYTES = 5000

BACKUP = f"""---
- name: etcd_backup stand-in (a snapshot, and the cluster files a create_cluster leaves)
  hosts: all
  gather_facts: false
  connection: local  # API host vars may not choose the connection (varpolicy)
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
    _state: "{{{{ lookup('env', 'HOME') }}}}/.smcp/clusters/{{{{ smcp_cluster_name }}}}"
  tasks:
    - name: Snapshot
      ansible.builtin.copy:
        dest: "{{{{ etcd_backup_dir }}}}/{{{{ smcp_cluster_name }}}}-etcd-1.db"
        content: "{{{{ 'x' * {SNAPSHOT_BYTES} }}}}"
        mode: "0600"
      run_once: true
    - name: State directory
      ansible.builtin.file:
        path: "{{{{ _state }}}}"
        state: directory
        mode: "0700"
      run_once: true
    - name: Cluster files
      ansible.builtin.copy:
        dest: "{{{{ _state }}}}/{{{{ item.name }}}}"
        content: "{{{{ item.text }}}}"
        mode: "0600"
      loop:
        - {{name: admin.conf, text: {KUBECONFIG!r}}}
        - {{name: ca.crt, text: "-----BEGIN CERTIFICATE-----\\nstand-in\\n-----END CERTIFICATE-----\\n"}}
      run_once: true
"""

SHOW = """---
- name: preflight stand-in that shows the kubeconfig the job was given
  hosts: all
  gather_facts: false
  connection: local  # API host vars may not choose the connection (varpolicy)
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    _conf: "{{ lookup('env', 'HOME') }}/.smcp/clusters/{{ smcp_cluster_name }}/admin.conf"
  tasks:
    - name: Show it
      ansible.builtin.debug:
        msg: "seeded: {{ lookup('file', _conf) }}"
      run_once: true
"""


@pytest.fixture
def art_collections(reachable_dir: Callable[[], Path]) -> Path:
    root = reachable_dir() / "art-collections"
    coll = root / "ansible_collections" / "smcp" / "platform"
    (coll / "playbooks").mkdir(parents=True)
    for name, text in PLAYBOOKS.items():
        (coll / "playbooks" / f"{name}.yml").write_text("---" + text)
    (coll / "playbooks" / "etcd_backup.yml").write_text(BACKUP)
    (coll / "playbooks" / "preflight.yml").write_text(SHOW)
    (coll / "roles").symlink_to(REPO / "roles")
    shutil.copy(REPO / "galaxy.yml", coll / "galaxy.yml")
    for path in (root, *root.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return root


def _cluster(api: Any, name: str) -> dict[str, Any]:
    cred = api.credential()
    host = api.host(f"{name}-h1", cred["id"])
    return api.cluster(name, [host["id"]])  # type: ignore[no-any-return]


def _backup(api: Any, cluster: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/api/v1/jobs", json={"operation": "etcd_backup", "cluster_id": cluster["id"]})
    assert r.status_code == 202, r.text
    return api.wait_job(r.json()["id"])  # type: ignore[no-any-return]


def test_a_jobs_artifacts_are_served_and_seeded_by_another_replica(
    start_api: Callable[..., Any], art_collections: Path, tmp_path: Path
) -> None:
    a = start_api(start_worker=True, collections_path=art_collections)
    cluster = _cluster(a, "art1")
    done = _backup(a, cluster)
    assert done["status"] == "successful", done
    listed = a.get("/api/v1/artifacts", params={"cluster": "art1"}).json()
    by_name = {x["name"]: x for x in listed}
    assert set(by_name) == {"admin.conf", "ca.crt", "art1-etcd-1.db"}
    snap = by_name["art1-etcd-1.db"]
    assert (snap["kind"], snap["size"], snap["job_id"]) == ("etcd_snapshot", SNAPSHOT_BYTES, done["id"])
    assert snap["sha256"] == hashlib.sha256(b"x" * SNAPSHOT_BYTES).hexdigest()
    assert not (a.services.settings.data_dir / "backups").exists()  # nothing on this replica's disk
    # the kubeconfig is encrypted at rest: its secret is in no stored byte
    with a.services.sessions() as s:
        stored = b"".join(s.scalars(select(ArtifactChunk.data)))
    assert b"artifact-admin-s3cret" not in stored

    # replica B: its own data dir and worker (the shared secret key), the same store
    key = (a.services.settings.data_dir / "secret.key").read_text().strip()
    token = a.services.settings.token_file()
    a.stop()
    b = start_api(
        start_worker=True,
        collections_path=art_collections,
        data_dir=tmp_path / "b",
        secret_key=key,
        admin_token_file=token,
    )
    r = b.get(f"/api/v1/artifacts/{snap['id']}/content")
    assert r.status_code == 200 and r.content == b"x" * SNAPSHOT_BYTES
    assert r.headers["x-checksum-sha256"] == snap["sha256"]
    assert b.get(f"/api/v1/artifacts/{snap['id']}/content", role="operator").status_code == 403
    job = b.post("/api/v1/jobs", json={"operation": "preflight", "cluster_id": cluster["id"]}).json()
    assert b.wait_job(job["id"])["status"] == "successful"
    assert "seeded: apiVersion: v1" in b.get(f"/api/v1/jobs/{job['id']}/stdout").text


def test_a_damaged_artifact_is_never_served(api: Any) -> None:
    services = api.services
    data = bytes(range(256)) * 40
    stored = artifacts.store_bytes(services, data, cluster="c1", kind=artifacts.ETCD_SNAPSHOT, name="c1-etcd-2.db")
    kube = artifacts.store_bytes(services, KUBECONFIG.encode(), cluster="c1", kind=artifacts.CLUSTER_FILE, name="a")
    assert api.get(f"/api/v1/artifacts/{stored.id}/content").content == data
    with services.sessions() as s:
        s.execute(update(ArtifactChunk).where(ArtifactChunk.artifact_id == stored.id).values(data=b"y" + data[1:]))
        s.execute(update(ArtifactChunk).where(ArtifactChunk.artifact_id == kube.id).values(data=b"gAAAA-tampered"))
        s.commit()
    r = api.get(f"/api/v1/artifacts/{stored.id}/content")
    assert r.status_code == 500
    assert f"artifact {stored.id} (etcd_snapshot 'c1-etcd-2.db' of cluster 'c1') is damaged" in r.json()["detail"]
    assert f"where {stored.sha256}" in r.json()["detail"]
    with services.sessions() as s:
        row = s.get(Artifact, kube.id)
    with pytest.raises(artifacts.ArtifactCorrupt, match="does not decrypt"):
        artifacts.read_bytes(services, row)


def test_content_is_stored_in_chunks_and_read_back(api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "CHUNK_BYTES", 1000)
    src = tmp_path / "snap.db"
    src.write_bytes(bytes(range(256)) * 20)  # 5120 bytes: 6 chunks
    stored = artifacts.store_file(api.services, src, cluster="c2", kind=artifacts.ETCD_SNAPSHOT)
    with api.services.sessions() as s:
        assert len(s.scalars(select(ArtifactChunk.seq).where(ArtifactChunk.artifact_id == stored.id)).all()) == 6
    assert api.get(f"/api/v1/artifacts/{stored.id}/content").content == src.read_bytes()
    again = artifacts.store_file(api.services, src, cluster="c2", kind=artifacts.ETCD_SNAPSHOT)  # replaced
    assert api.get(f"/api/v1/artifacts/{stored.id}").status_code == 404
    assert [x["id"] for x in api.get("/api/v1/artifacts", params={"cluster": "c2"}).json()] == [again.id]


def test_an_artifact_above_the_limit_fails_its_job_and_says_why(
    start_api: Callable[..., Any], art_collections: Path
) -> None:
    api = start_api(start_worker=True, collections_path=art_collections, max_artifact_bytes=4096)
    cluster = _cluster(api, "art3")
    done = _backup(api, cluster)
    assert done["status"] == "failed"
    assert done["status_reason"] == (
        f"artifact etcd_snapshot 'art3-etcd-1.db' of cluster 'art3' is {SNAPSHOT_BYTES} bytes, above the artifact "
        "limit of 4096 bytes (SMCP_MAX_ARTIFACT_BYTES); raise the limit (the store keeps every artifact) or make it "
        "smaller"
    )
    names = {x["name"] for x in api.get("/api/v1/artifacts", params={"cluster": "art3"}).json()}
    assert "art3-etcd-1.db" not in names


def test_rotating_the_secret_key_re_encrypts_cluster_files(start_api: Callable[..., Any], settings: Any) -> None:
    api = start_api()
    kube = artifacts.store_bytes(
        api.services, KUBECONFIG.encode(), cluster="c4", kind=artifacts.CLUSTER_FILE, name="admin.conf"
    )
    api.stop()
    old = (settings.data_dir / "secret.key").read_bytes().strip()
    rotate_secret_key(settings)
    again = start_api()
    with again.services.sessions() as s:
        row = s.get(Artifact, kube.id)
        stored = b"".join(s.scalars(select(ArtifactChunk.data).where(ArtifactChunk.artifact_id == kube.id)))
    assert artifacts.read_bytes(again.services, row) == KUBECONFIG.encode()  # the new key reads it
    with pytest.raises(InvalidToken):
        Vault(old).decrypt(stored)
