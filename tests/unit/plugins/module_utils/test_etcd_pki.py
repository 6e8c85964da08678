"""etcd PKI decisions (plugins/module_utils/etcd_pki.py): issue only when needed."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible_collections.smcp.platform.plugins.module_utils import etcd_pki as pki

UTC = datetime.UTC


@pytest.fixture(scope="module")
def ca():
    issued = pki.new_ca("etcd-ca", 3650)
    return issued, pki.load_cert(issued.cert_pem, "ca"), pki.load_key(issued.key_pem, "ca")


def spec(sans=("et-1", "10.0.0.1", "localhost", "127.0.0.1"), usage="peer") -> pki.CertSpec:
    return pki.CertSpec("et-1-" + usage, "et-1", usage, list(sans))


def test_issued_certificate_has_sans_usages_and_ca_chain(ca):
    _issued, ca_cert, ca_key = ca
    new = pki.issue(spec(), ca_cert, ca_key, 365)
    cert = pki.load_cert(new.cert_pem, "leaf")
    assert pki.cert_sans(cert) == ({"et-1", "localhost"}, {"10.0.0.1", "127.0.0.1"})
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert pki.signed_by(cert, ca_cert)
    assert new.key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert pki.reissue_reason(spec(), new.cert_pem, new.key_pem, ca_cert, 30) is None


def test_client_certificate_is_client_auth_only_with_organization(ca):
    _issued, ca_cert, ca_key = ca
    client = pki.CertSpec("apiserver-etcd-client", "kube-apiserver-etcd-client", "client", [], "system:masters")
    cert = pki.load_cert(pki.issue(client, ca_cert, ca_key, 365).cert_pem, "client")
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert "O=system:masters" in cert.subject.rfc4514_string()


def test_ca_signs_and_leaf_enciphers(ca):
    """The CA may sign certificates (path length 0) and nothing else; a leaf may not sign certificates."""
    _issued, ca_cert, ca_key = ca
    leaf = pki.load_cert(pki.issue(spec(), ca_cert, ca_key, 365).cert_pem, "leaf")
    seen = {}
    for what, cert in (("ca", ca_cert), ("leaf", leaf)):
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert basic.critical and usage.critical
        assert not (usage.value.content_commitment or usage.value.data_encipherment or usage.value.key_agreement)
        seen[what] = (
            basic.value.ca,
            basic.value.path_length,
            usage.value.digital_signature,
            usage.value.key_encipherment,
            usage.value.key_cert_sign,
            usage.value.crl_sign,
        )
    assert seen == {"ca": (True, 0, True, False, True, True), "leaf": (False, None, True, True, False, False)}
    assert ca_cert.subject == ca_cert.issuer and leaf.issuer == ca_cert.subject


def test_validity_is_capped_at_the_ca_expiry():
    short = pki.new_ca("short-ca", 10)
    ca_cert, ca_key = pki.load_cert(short.cert_pem, "ca"), pki.load_key(short.key_pem, "ca")
    leaf = pki.load_cert(pki.issue(spec(), ca_cert, ca_key, 365).cert_pem, "leaf")
    assert pki.not_after(leaf) <= pki.not_after(ca_cert)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("sans", "SANs changed"),
        ("expiry", "expires within 30 days"),
        ("other_ca", "signed by another CA"),
        ("missing", "missing"),
        ("garbage", "unreadable"),
        ("wrong_key", "key does not match certificate"),
        ("cn", "common name changed"),
    ],
)
def test_reissue_reasons(ca, change, reason):
    _issued, ca_cert, ca_key = ca
    current = pki.issue(spec(), ca_cert, ca_key, 365)
    wanted, cert_pem, key_pem, now = spec(), current.cert_pem, current.key_pem, None
    if change == "sans":
        wanted = spec(sans=("et-1", "10.0.0.9", "localhost", "127.0.0.1"))
    elif change == "expiry":
        now = datetime.datetime.now(UTC) + datetime.timedelta(days=340)
    elif change == "other_ca":
        other = pki.new_ca("other", 100)
        foreign = pki.issue(spec(), pki.load_cert(other.cert_pem, "o"), pki.load_key(other.key_pem, "o"), 30)
        cert_pem, key_pem = foreign.cert_pem, foreign.key_pem
    elif change == "missing":
        cert_pem = None
    elif change == "garbage":
        cert_pem = "not a certificate"
    elif change == "wrong_key":
        key_pem = pki.issue(spec(), ca_cert, ca_key, 365).key_pem
    elif change == "cn":
        wanted = pki.CertSpec("et-1-peer", "renamed", "peer", list(spec().sans))
    assert pki.reissue_reason(wanted, cert_pem, key_pem, ca_cert, 30, now=now) == reason


def test_san_order_and_case_do_not_force_reissue(ca):
    _issued, ca_cert, ca_key = ca
    current = pki.issue(spec(), ca_cert, ca_key, 365)
    shuffled = spec(sans=("127.0.0.1", "LOCALHOST", "10.0.0.1", "et-1", "et-1"))
    assert pki.reissue_reason(shuffled, current.cert_pem, current.key_pem, ca_cert, 30) is None


def test_ca_reason(ca):
    issued, _ca_cert, _ca_key = ca
    assert pki.ca_reason(None, None, 30) == "missing"
    assert pki.ca_reason(issued.cert_pem, issued.key_pem, 30) is None
    assert pki.ca_reason(issued.cert_pem, issued.key_pem, 4000) == "expires within 4000 days"
    other = pki.new_ca("other", 100)
    with pytest.raises(pki.PkiError, match="does not match"):
        pki.ca_reason(issued.cert_pem, other.key_pem, 30)
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=4000)
    with pytest.raises(pki.PkiError, match="expired"):
        pki.ca_reason(issued.cert_pem, issued.key_pem, 30, now=later)


def test_bad_key_error_never_echoes_the_key():
    secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
    with pytest.raises(pki.PkiError) as err:
        pki.load_key(secret, "CA key")
    assert "c2VjcmV0" not in str(err.value) and "CA key" in str(err.value)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (pki.CertSpec("x", "x", "bogus", ["a"]), "usage"),
        (pki.CertSpec("../x", "x", "peer", ["a"]), "plain file name"),
        (pki.CertSpec("x", "x", "server", []), "needs at least one SAN"),
        (pki.CertSpec("x", "x", "server", ["a b"]), "neither an IP"),
    ],
)
def test_invalid_specs(ca, bad, match):
    _issued, ca_cert, ca_key = ca
    with pytest.raises(pki.PkiError, match=match):
        pki.issue(bad, ca_cert, ca_key, 1)
