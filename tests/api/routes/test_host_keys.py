"""Pinned SSH host keys through the API: shown as fingerprints, validated when given, accepted from a real sshd,
recorded at first contact only when nothing is pinned."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from smcp_api import hostkeys
from smcp_api.cli import common
from smcp_api.cli.main import cli
from smcp_api.hostkey_service import record_first_contact
from smcp_api.models import Host

from tests.api.sshd import free_port, keygen, keygen_fingerprint, local_sshd


@pytest.fixture
def sshd(tmp_path):
    with local_sshd(tmp_path / "sshd") as server:
        yield server


def _line(pub) -> str:
    return "anyname " + pub.read_text().strip()


def test_given_known_hosts_is_validated_normalised_and_shown_as_fingerprints(api, tmp_path):
    cred = api.credential()
    pub = keygen(tmp_path / "k", "ed25519")
    host = api.host("n1", cred["id"], address="192.0.2.5", ssh_port=2222, known_hosts=_line(pub))
    fp = keygen_fingerprint(pub)
    assert host["host_key_fingerprints"] == [fp]
    assert host["known_hosts"].startswith("[192.0.2.5]:2222 ssh-ed25519 ")
    # the pin follows the address and port (it names the host as ssh looks it up)
    r = api.patch(f"/api/v1/hosts/{host['id']}", role="operator", json={"ssh_port": 22})
    assert r.status_code == 200 and r.json()["known_hosts"].startswith("192.0.2.5 ssh-ed25519 ")
    assert api.get("/api/v1/hosts", role="viewer").json()[0]["host_key_fingerprints"] == [fp]
    bad = {"name": "n2", "address": "192.0.2.6", "credential_id": cred["id"], "known_hosts": "@revoked * x y"}
    r = api.post("/api/v1/hosts", json=bad)
    assert r.status_code == 422 and "known_hosts: line 1: the marker '@revoked'" in r.json()["detail"]
    r = api.patch(f"/api/v1/hosts/{host['id']}", json={"known_hosts": "garbage"})
    assert r.status_code == 422 and "is not 'HOST KEYTYPE KEY'" in r.json()["detail"]
    assert [h["name"] for h in api.get("/api/v1/hosts").json()] == ["n1"]
    assert api.get(f"/api/v1/hosts/{host['id']}").json()["host_key_fingerprints"] == [fp]


def test_accept_key_pins_exactly_the_matching_scanned_key(api, sshd, tmp_path):
    cred = api.credential()
    old = keygen(tmp_path / "old", "ed25519")
    host = api.host("n1", cred["id"], address="127.0.0.1", ssh_port=sshd.port, known_hosts=_line(old))
    url = f"/api/v1/hosts/{host['id']}/host-key"
    ed, ec = sshd.fingerprint("ed25519"), sshd.fingerprint("ecdsa")

    r = api.post(url, role="operator", json={"fingerprint": keygen_fingerprint(old)})
    assert r.status_code == 409, r.text
    assert f"does not offer a key with fingerprint {keygen_fingerprint(old)}" in r.json()["detail"]
    assert ed in r.json()["detail"] and ec in r.json()["detail"]
    assert api.get(f"/api/v1/hosts/{host['id']}").json()["host_key_fingerprints"] == [keygen_fingerprint(old)]

    r = api.post(url, role="operator", json={"fingerprint": ed})
    assert r.status_code == 200, r.text
    assert r.json()["host_key_fingerprints"] == [ed]
    assert (
        r.json()["known_hosts"]
        == f"[127.0.0.1]:{sshd.port} " + " ".join(sshd.host_keys["ed25519"].read_text().split()[:2]) + "\n"
    )
    assert api.get(f"/api/v1/hosts/{host['id']}", role="viewer").json()["host_key_fingerprints"] == [ed]


def test_accept_key_refusals(api, sshd):
    cred = api.credential()
    host = api.host("n1", cred["id"], address="127.0.0.1", ssh_port=sshd.port)
    url = f"/api/v1/hosts/{host['id']}/host-key"
    fp = sshd.fingerprint("ed25519")
    assert api.post(url, role="viewer", json={"fingerprint": fp}).status_code == 403
    assert api.post("/api/v1/hosts/nope/host-key", json={"fingerprint": fp}).status_code == 404
    r = api.post(url, json={"fingerprint": "MD5:ab:cd"})
    assert r.status_code == 422 and "fingerprint 'MD5:ab:cd' is not a SHA256 fingerprint" in r.text
    closed = free_port()
    api.patch(f"/api/v1/hosts/{host['id']}", json={"ssh_port": closed})
    r = api.post(url, json={"fingerprint": fp})
    assert r.status_code == 502, r.text
    assert r.json()["detail"].startswith(f"host n1: 127.0.0.1 port {closed}: Connection refused")
    assert api.get(f"/api/v1/hosts/{host['id']}").json()["known_hosts"] is None


def test_record_first_contact_never_overwrites_a_pin(api, sshd, tmp_path):
    cred = api.credential()
    fresh = api.host("fresh", cred["id"], address="127.0.0.1", ssh_port=sshd.port)
    given = keygen(tmp_path / "given", "ed25519")
    pinned = api.host("pinned", cred["id"], address="192.0.2.9", known_hosts=_line(given))
    scanned = hostkeys.scan("127.0.0.1", sshd.port, 5)
    other = [_line(keygen(tmp_path / "other", "ed25519"))]
    with api.services.sessions() as session:
        assert record_first_contact(session, fresh["id"], scanned) is True
        assert record_first_contact(session, fresh["id"], other) is False
        assert record_first_contact(session, pinned["id"], scanned) is False
        assert record_first_contact(session, "nope", scanned) is False
        with pytest.raises(hostkeys.HostKeyError):
            record_first_contact(session, pinned["id"], ["garbage"])
        assert session.get(Host, fresh["id"]).known_hosts == "".join(line + "\n" for line in scanned)
    got = api.get(f"/api/v1/hosts/{fresh['id']}").json()["host_key_fingerprints"]
    assert sorted(got) == sorted([sshd.fingerprint("ed25519"), sshd.fingerprint("ecdsa")])
    assert api.get(f"/api/v1/hosts/{pinned['id']}").json()["host_key_fingerprints"] == [keygen_fingerprint(given)]


def test_smcpctl_host_show_and_accept_key(api, sshd, tmp_path):
    """smcpctl against the real app (the TestClient's transport): show the pin, accept a key, refuse a wrong one."""
    cred = api.credential()
    api.host("n1", cred["id"], address="127.0.0.1", ssh_port=sshd.port)
    token = api.admin["Authorization"].removeprefix("Bearer ")

    def smcpctl(*args: str):
        state = common.State(url="http://testserver", token=token, transport=api.client._transport)
        return CliRunner().invoke(cli, list(args), obj=state)

    shown = smcpctl("host", "show", "n1")
    assert shown.exit_code == 0, shown.output
    assert "pinned SSH host keys: none yet" in shown.output and "smcpctl host accept-key n1 SHA256:" in shown.output
    ed = sshd.fingerprint("ed25519")
    wrong = keygen_fingerprint(keygen(tmp_path / "other", "ed25519"))
    refused = smcpctl("host", "accept-key", "n1", wrong)
    assert refused.exit_code == 5, refused.output
    assert f"does not offer a key with fingerprint {wrong}" in refused.output and ed in refused.output
    accepted = smcpctl("host", "accept-key", "n1", ed)
    assert accepted.exit_code == 0, accepted.output
    assert f"host n1: pinned {ed}" in accepted.output
    shown = smcpctl("host", "show", "n1")
    assert shown.exit_code == 0 and f"pinned SSH host keys:\n  {ed}\n" in shown.output
    assert "[127.0.0.1]" not in shown.output  # the raw known_hosts lines stay out of the table
    as_json = smcpctl("host", "show", "n1", "-o", "json")
    assert json.loads(as_json.output)["host_key_fingerprints"] == [ed]


def test_sandbox_registration_again_sends_no_pin_change(api, tmp_path):
    """`smcpctl up --sandbox` re-registers hosts: the stored (normalised) pin is the same keys, so nothing is
    patched, also while a job holds the host (a PATCH would be a 409)."""
    from smcp_api import client as api_client
    from smcp_api.cli import local
    from smcp_api.models import Job, Lock

    from tests.api.conftest import new_private_key

    (tmp_path / "key").write_text(new_private_key())
    known = tmp_path / "known_hosts"
    known.write_text("sb-1,10.9.0.2 " + keygen(tmp_path / "hk", "ed25519").read_text())
    info = {
        "name": "sb",
        "user": "smcp",
        "port": 22,
        "key": str(tmp_path / "key"),
        "known_hosts": str(known),
        "groups": {"workers": ["sb-1"]},
        "hosts": [{"name": "sb-1", "ip": "10.9.0.2"}],
    }
    token = api.admin["Authorization"].removeprefix("Bearer ")
    client = api_client.SmcpClient("http://testserver", token, transport=api.client._transport)
    (first,) = local.register_sandbox(client, info)
    assert first["host_key_fingerprints"] == [keygen_fingerprint(tmp_path / "hk.pub")]
    with api.services.sessions() as session:
        job = Job(operation="prepare_hosts", host_ids=[first["id"]], status="running", project_id="default")
        session.add(job)
        session.flush()
        session.add(Lock(key=f"host:{first['id']}", job_id=job.id))
        session.commit()
    (again,) = local.register_sandbox(client, info)
    assert again["known_hosts"] == first["known_hosts"]
