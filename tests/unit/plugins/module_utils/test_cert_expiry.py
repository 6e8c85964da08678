"""cert_expiry: openssl output, kubeconfig client certificates, the threshold and CA detection."""

from __future__ import annotations

import base64
import datetime

import pytest
from ansible_collections.smcp.platform.plugins.module_utils import cert_expiry as ce

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)


def test_parse_openssl() -> None:
    when, subject = ce.parse_openssl("notAfter=Dec  5 15:41:19 2026 GMT\nsubject=CN = kube-apiserver\n")
    assert when == datetime.datetime(2026, 12, 5, 15, 41, 19, tzinfo=datetime.UTC)
    assert subject == "CN = kube-apiserver"
    with pytest.raises(ValueError, match="no notAfter"):
        ce.parse_openssl("unable to load certificate")


def test_threshold_and_expired() -> None:
    soon = ce.entry("/etc/kubernetes/pki/apiserver.crt", "file", NOW + datetime.timedelta(days=10), "CN=a", 30, NOW)
    assert soon["days_left"] == 10 and soon["expiring"] and not soon["expired"] and not soon["ca"]
    late = ce.entry("/etc/kubernetes/pki/ca.crt", "file", NOW + datetime.timedelta(days=3000), "CN=ca", 30, NOW)
    assert not late["expiring"] and late["ca"] and late["not_after"].startswith("2035-")
    gone = ce.entry("/x.crt", "file", NOW - datetime.timedelta(hours=1), "", 30, NOW)
    assert gone["expired"] and gone["expiring"] and gone["days_left"] == -1


def test_kubeconfig_client_certs() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    text = (
        "users:\n- name: admin\n  user:\n    client-certificate-data: "
        + base64.b64encode(pem.encode()).decode()
        + "\n    client-key-data: c2VjcmV0\n- name: kubelet\n  user:\n"
        "    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n"
    )
    assert ce.kubeconfig_client_certs(text) == [
        {"pem": pem},
        {"file": "/var/lib/kubelet/pki/kubelet-client-current.pem"},
    ]


@pytest.mark.parametrize(
    ("path", "ca"),
    [
        ("/etc/kubernetes/pki/ca.crt", True),
        ("/etc/kubernetes/pki/front-proxy-ca.crt", True),
        ("/etc/etcd/pki/ca.crt", True),
        ("/etc/kubernetes/pki/apiserver.crt", False),
        ("/etc/kubernetes/pki/front-proxy-client.crt", False),
        ("/etc/kubernetes/admin.conf", False),
    ],
)
def test_ca_detection(path: str, ca: bool) -> None:
    assert ce.is_ca(path) is ca
