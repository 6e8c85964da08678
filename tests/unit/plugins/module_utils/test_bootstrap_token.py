"""smcp.platform.bootstrap_token against the Kubernetes API test server (tests/standins/kubeapi.py).

What kubeadm expects of a join token Secret comes from
https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/ (Secret format) and kubeadm's
own tokens (usages authentication+signing, group system:bootstrappers:kubeadm:default-node-token).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils import bootstrap_token as bt
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient, KubeError, ca_cert_hash
from ansible_collections.smcp.platform.plugins.modules import bootstrap_token as module
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.standins.kubeapi import KubeAPI

USAGES = ["authentication", "signing"]
GROUPS = ["system:bootstrappers:kubeadm:default-node-token"]
NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
SECRETS_PATH = "/api/v1/namespaces/kube-system/secrets"


def ca_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def ca() -> bytes:
    return ca_pem()


@pytest.fixture
def api(tmp_path: Path):
    with KubeAPI(log=tmp_path / "requests.jsonl") as server:
        yield server


@pytest.fixture
def kubeconfig(api: KubeAPI, tmp_path: Path, ca: bytes) -> Path:
    """A kubeconfig like the operator's: the stand-in's URL plus the cluster CA data."""
    path = api.kubeconfig(tmp_path / "admin.conf")
    doc = yaml.safe_load(path.read_text())
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(ca).decode()
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def client(kubeconfig: Path) -> KubeClient:
    return KubeClient(str(kubeconfig))


def secrets(api: KubeAPI) -> dict[str, dict]:
    return {key[3]: obj for key, obj in api.store.items() if key[1] == "secrets" and key[2] == "kube-system"}


def data(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def ensure(client, **kw):
    args = dict(ttl=3600, min_remaining=1200, usages=USAGES, groups=GROUPS, description="smcp join token", now=NOW)
    args.update(kw)
    return bt.ensure(client, **args)


def test_creates_a_kubeadm_style_token_secret(api: KubeAPI, client: KubeClient) -> None:
    out = ensure(client)
    assert out["changed"] and out["created"]
    token = out["token"]
    assert TOKEN_RE.match(token.value)
    secret = secrets(api)[f"bootstrap-token-{token.token_id}"]
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "smcp"}
    assert data(secret) == {
        "token-id": token.token_id,
        "token-secret": token.secret,
        "expiration": "2026-11-25T13:00:00Z",
        "description": "smcp join token",
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
    }


def test_reuses_while_enough_time_is_left_then_rotates(api: KubeAPI, client: KubeClient) -> None:
    first = ensure(client)["token"]
    posts = [r for r in api.requests if r["method"] == "POST"]
    again = ensure(client, now=NOW + datetime.timedelta(minutes=30))  # 30 min left >= 20 min
    assert again["changed"] is False and again["created"] is False
    assert again["token"].value == first.value
    assert [r for r in api.requests if r["method"] == "POST"] == posts  # nothing created

    rotated = ensure(client, now=NOW + datetime.timedelta(minutes=45))  # 15 min left < 20 min
    assert rotated["created"] and rotated["token"].value != first.value
    assert f"bootstrap-token-{first.token_id}" in secrets(api)  # still valid for joins in flight

    later = ensure(client, now=NOW + datetime.timedelta(minutes=70))  # the first one has expired
    assert later["removed"] == [f"bootstrap-token-{first.token_id}"]
    assert later["token"].value == rotated["token"].value
    assert f"bootstrap-token-{first.token_id}" not in secrets(api)


def test_never_reuses_or_deletes_tokens_it_did_not_make(api: KubeAPI, client: KubeClient) -> None:
    foreign = bt.secret_body("zzzzzz", "z" * 16, NOW - datetime.timedelta(hours=1), USAGES, GROUPS, "someone's")
    foreign["metadata"]["labels"] = {}
    client.request("POST", SECRETS_PATH, body=foreign)
    still_valid = bt.secret_body("yyyyyy", "y" * 16, NOW + datetime.timedelta(hours=5), USAGES, GROUPS, "kubeadm's")
    still_valid["metadata"]["labels"] = {}
    client.request("POST", SECRETS_PATH, body=still_valid)
    out = ensure(client)
    assert out["created"] and out["token"].token_id not in ("zzzzzz", "yyyyyy")
    assert out["removed"] == []
    assert {"bootstrap-token-zzzzzz", "bootstrap-token-yyyyyy"} <= set(secrets(api))


def test_other_usages_or_groups_are_not_reused(client: KubeClient) -> None:
    first = ensure(client)["token"]
    assert ensure(client, usages=["authentication"])["token"].value != first.value
    assert ensure(client)["token"].value == first.value


def test_check_mode_creates_nothing(api: KubeAPI, client: KubeClient) -> None:
    out = ensure(client, check_mode=True)
    assert out == {"changed": True, "created": True, "token": None, "removed": []}
    assert secrets(api) == {}


def test_id_collision_is_retried(api: KubeAPI, client: KubeClient) -> None:
    rand = random.Random(7)
    first = ensure(client, rand=random.Random(7), usages=["authentication"])["token"]
    second = ensure(client, rand=rand)["token"]  # same first id, 409, then another one
    assert second.token_id != first.token_id
    assert len(secrets(api)) == 2


def test_api_errors_surface(api: KubeAPI, client: KubeClient) -> None:
    api.fail(method="POST", path="secrets", status=403, message="forbidden")
    with pytest.raises(KubeError) as exc:
        ensure(client)
    assert exc.value.status == 403


@pytest.mark.parametrize(
    ("kw", "text"),
    [
        ({"usages": ["signing"]}, "authentication"),
        ({"usages": ["authentication", "root"]}, "allowed"),
        ({"groups": ["system:masters"]}, "system:bootstrappers:"),
        ({"ttl": 0}, "positive"),
        ({"ttl": 600, "min_remaining": 600}, "shorter than ttl"),
    ],
)
def test_bad_options(client: KubeClient, kw: dict, text: str) -> None:
    with pytest.raises(bt.TokenError, match=re.escape(text)):
        ensure(client, **kw)


@pytest.mark.parametrize(("value", "seconds"), [("3600", 3600), (90, 90), ("1h", 3600), ("20m", 1200), ("1h30m", 5400)])
def test_durations(value, seconds: int) -> None:
    assert bt.parse_duration("ttl", value) == seconds


def test_bad_duration() -> None:
    with pytest.raises(bt.TokenError, match="ttl='soon'"):
        bt.parse_duration("ttl", "soon")


def test_generated_tokens_use_the_whole_alphabet_and_format() -> None:
    tokens = [".".join(bt.generate()) for _ in range(200)]
    assert all(TOKEN_RE.match(t) for t in tokens)
    assert len(set(tokens)) == 200


def test_ca_hash_matches_the_documented_openssl_pipeline(ca: bytes) -> None:
    # kubeadm join docs: openssl x509 -pubkey -in ca.crt | openssl rsa/pkey -pubin -outform der | sha256sum
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=ca, capture_output=True, check=True).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True, check=True
    ).stdout
    assert ca_cert_hash(ca) == "sha256:" + hashlib.sha256(der).hexdigest()


# --------------------------------------------------------------------------- the module


def run(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_module_refuses_to_run_without_no_log(api: KubeAPI, kubeconfig: Path, capsys) -> None:
    result = run(capsys, kubeconfig=str(kubeconfig))
    assert result["failed"] and "no_log: true" in result["msg"]
    assert secrets(api) == {}


def test_module_returns_token_hash_and_version_then_reuses(api: KubeAPI, kubeconfig: Path, ca: bytes, capsys) -> None:
    first = run(capsys, kubeconfig=str(kubeconfig), _ansible_no_log=True)
    assert first["changed"] and first["created"]
    assert TOKEN_RE.match(first["token"])
    assert first["ca_cert_hash"] == ca_cert_hash(ca)
    assert first["server_version"] == "1.35.0"
    assert first["token_info"]["secret_name"] == "bootstrap-token-" + first["token"].split(".")[0]
    assert first["token"].split(".")[1] not in json.dumps(first["token_info"])
    second = run(capsys, kubeconfig=str(kubeconfig), _ansible_no_log=True)
    assert second["changed"] is False and second["token"] == first["token"]


def test_module_check_mode(api: KubeAPI, kubeconfig: Path, capsys) -> None:
    result = run(capsys, kubeconfig=str(kubeconfig), _ansible_no_log=True, _ansible_check_mode=True)
    assert result["changed"] and result["token"] == "" and secrets(api) == {}


def test_module_unreachable_api_fails_clearly(kubeconfig: Path, capsys) -> None:
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # discard port: nothing listens
    kubeconfig.write_text(yaml.safe_dump(doc))
    result = run(capsys, kubeconfig=str(kubeconfig), _ansible_no_log=True, wait_timeout=0)
    assert result["failed"] and "did not answer" in result["msg"]


def test_module_kubeconfig_without_ca(api: KubeAPI, tmp_path: Path, capsys) -> None:
    path = api.kubeconfig(tmp_path / "plain.conf")
    result = run(capsys, kubeconfig=str(path), _ansible_no_log=True)
    assert result["failed"] and "certificate-authority" in result["msg"]
