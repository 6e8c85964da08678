"""smcp.platform.etcd_certs: issue only what is needed, install with 0600 keys, never echo keys."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils import etcd_pki as pki
from ansible_collections.smcp.platform.plugins.modules import etcd_certs

OWNER = {"owner": str(os.getuid()), "group": str(os.getgid())}


def members(ip3: str = "10.0.0.3") -> list[dict]:
    return [
        {"name": f"et-{i}", "sans": [f"et-{i}", ip, "localhost", "127.0.0.1"]}
        for i, ip in ((1, "10.0.0.1"), (2, "10.0.0.2"), (3, ip3))
    ]


CLIENTS = [{"name": "client", "common_name": "etcd-admin"}]


def run(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        etcd_certs.main()
    return json.loads(capsys.readouterr().out)


def test_issue_then_idempotent_then_reissue_on_san_change(tmp_path, capsys):
    first = run(capsys, pki_dir=str(tmp_path), members=members(), clients=CLIENTS)
    assert first["changed"] and first["ca_created"]
    assert sorted(i["name"] for i in first["issued"]) == sorted(
        ["client"] + [f"et-{i}-{u}" for i in (1, 2, 3) for u in ("peer", "server")]
    )
    assert "content" not in first
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "issued" / "et-1-peer.key").stat().st_mode) == 0o600

    again = run(capsys, pki_dir=str(tmp_path), members=members(), clients=CLIENTS)
    assert again["changed"] is False and again["issued"] == []

    moved = run(capsys, pki_dir=str(tmp_path), members=members(ip3="10.0.0.33"), clients=CLIENTS)
    assert moved["changed"] and not moved["ca_created"]
    assert moved["issued"] == [
        {"name": "et-3-peer", "reason": "SANs changed"},
        {"name": "et-3-server", "reason": "SANs changed"},
    ]


def test_check_mode_writes_nothing(tmp_path, capsys):
    result = run(capsys, pki_dir=str(tmp_path / "pki"), members=members(), _ansible_check_mode=True)
    assert result["changed"] and result["ca_created"] and not (tmp_path / "pki").exists()


def test_supplied_ca_replaces_the_stored_one_and_reissues(tmp_path, capsys):
    run(capsys, pki_dir=str(tmp_path), members=members()[:1])
    user_ca = pki.new_ca("user-ca", 100)
    result = run(capsys, pki_dir=str(tmp_path), members=members()[:1], ca_cert=user_ca.cert_pem, ca_key=user_ca.key_pem)
    assert result["ca_created"] and {i["reason"] for i in result["issued"]} == {"signed by another CA"}
    assert (tmp_path / "ca.crt").read_text() == user_ca.cert_pem
    assert user_ca.key_pem not in json.dumps(result)


def test_mismatched_supplied_ca_fails_without_echoing_the_key(tmp_path, capsys):
    one, two = pki.new_ca("a", 10), pki.new_ca("b", 10)
    result = run(capsys, pki_dir=str(tmp_path), members=members(), ca_cert=one.cert_pem, ca_key=two.key_pem)
    assert result["failed"] and "does not match" in result["msg"]
    assert "PRIVATE KEY" not in json.dumps(result) and not (tmp_path / "ca.crt").exists()


def test_return_content_then_install(tmp_path, capsys):
    issued = run(capsys, pki_dir=str(tmp_path / "ca"), members=members(), clients=CLIENTS, return_content=True)
    content = issued["content"]
    files = {
        "ca.crt": content["ca.crt"],
        "peer.crt": content["et-2-peer.crt"],
        "peer.key": content["et-2-peer.key"],
    }
    dest = tmp_path / "member"
    first = run(capsys, state="installed", dest=str(dest), files=files, **OWNER)
    assert first["changed"] and first["written"] == ["ca.crt", "peer.crt", "peer.key"]
    assert stat.S_IMODE((dest / "peer.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "ca.crt").stat().st_mode) == 0o644
    assert "PRIVATE KEY" not in json.dumps(first)
    (dest / "peer.key").chmod(0o644)
    second = run(capsys, state="installed", dest=str(dest), files=files, **OWNER)
    assert second["changed"] and second["written"] == []
    assert stat.S_IMODE((dest / "peer.key").stat().st_mode) == 0o600
    assert run(capsys, state="installed", dest=str(dest), files=files, **OWNER)["changed"] is False


def test_duplicate_names_are_refused(tmp_path, capsys):
    result = run(capsys, pki_dir=str(tmp_path), members=members(), clients=[{"name": "et-1-peer", "common_name": "x"}])
    assert result["failed"] and "duplicate certificate names" in result["msg"]


def test_pairs_are_declared_in_the_argument_spec(tmp_path, capsys):
    ca = pki.new_ca("user-ca", 10)
    half = run(capsys, pki_dir=str(tmp_path), members=members(), ca_cert=ca.cert_pem)
    assert half["failed"] and "parameters are required together: ca_cert, ca_key" in half["msg"]
    assert "PRIVATE KEY" not in json.dumps(half) and list(tmp_path.iterdir()) == []
    bare = run(capsys, state="installed", files={"ca.crt": "x"})
    assert bare["failed"] and "state is installed but all of the following are missing: dest" in bare["msg"]


def test_install_mode_applies_to_certificates_and_never_to_keys(tmp_path, capsys):
    files = {"ca.crt": "cert\n", "peer.key": "key\n", "../x": "y"}
    refused = run(capsys, state="installed", dest=str(tmp_path / "m"), files=files, **OWNER)
    assert refused["failed"] and "'../x' must be a plain file name" in refused["msg"]
    assert not (tmp_path / "m").exists()  # every name checked before the first file is written
    del files["../x"]
    done = run(capsys, state="installed", dest=str(tmp_path / "m"), files=files, mode="0640", **OWNER)
    assert done["changed"] and done["written"] == ["ca.crt", "peer.key"]
    assert stat.S_IMODE((tmp_path / "m" / "ca.crt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "m" / "peer.key").stat().st_mode) == 0o600
