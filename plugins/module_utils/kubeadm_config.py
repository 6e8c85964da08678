# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""kubeadm configuration (v1beta4): validation, rendering and a deterministic YAML writer.

Pure logic (no file system, no third-party imports) so it runs on any managed host with a bare
python3 and is unit-tested without one. The module ``smcp.platform.kubeadm_config`` writes the result.

Documents rendered (field names from the kubeadm v1beta4, kubelet v1beta1 and kube-proxy v1alpha1
references, https://kubernetes.io/docs/reference/config-api/):

- ``kind=init``: InitConfiguration, ClusterConfiguration (external etcd), KubeletConfiguration,
  KubeProxyConfiguration.
- ``kind=join``: JoinConfiguration (with ``controlPlane`` for control-plane joins).

Every validation error names the field, the value and the fix (:class:`ConfigError`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.smcp.platform.plugins.module_utils import versions as _versions

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
KUBEPROXY_API = "kubeproxy.config.k8s.io/v1alpha1"

PROXY_MODES = ("iptables", "nftables")
REDACTED = "<redacted>"  # what diffs show instead of a token or key
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
# Version skew policy (https://kubernetes.io/releases/version-skew-policy/): the kubelet must not be
# newer than kube-apiserver and may be up to three minor versions older.
KUBELET_MAX_MINOR_LAG = 3
# kube-proxy nftables mode: beta and on by default from 1.31, GA in 1.33 (KEP-3866).
NFTABLES_MIN_MINOR = (1, 31)

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
_CERT_KEY_RE = re.compile(r"^[a-f0-9]{64}$")
_CA_HASH_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
# RFC 1123 subdomain (node names) and label value rules from the Kubernetes API conventions.
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")


class ConfigError(ValueError):
    """A bad input: ``field`` (the module option), ``value`` and ``fix``."""

    def __init__(self, field_name: str, value: Any, problem: str, fix: str) -> None:
        self.field = field_name
        self.value = value
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field_name}={value!r}: {problem}; fix: {fix}")

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "problem": self.problem, "fix": self.fix}


@dataclass
class KubeadmParams:
    """Inputs of the rendered configuration (module options of the same name)."""

    kind: str = "init"
    cluster_name: str = "smcp"
    kubernetes_version: str = "1.35.0"
    control_plane_endpoint: str = ""
    node_name: str = ""
    advertise_address: str = ""
    bind_port: int = 6443
    pod_subnet: str = "10.244.0.0/16"
    service_subnet: str = "10.96.0.0/12"
    dns_domain: str = "cluster.local"
    image_repository: str = ""
    etcd_endpoints: list[str] = field(default_factory=list)
    etcd_ca_file: str = "/etc/kubernetes/pki/etcd/ca.crt"
    etcd_cert_file: str = "/etc/kubernetes/pki/etcd/apiserver-etcd-client.crt"
    etcd_key_file: str = "/etc/kubernetes/pki/etcd/apiserver-etcd-client.key"
    cri_socket: str = "unix:///run/containerd/containerd.sock"
    proxy_mode: str = "iptables"
    taints: list[dict[str, str]] | None = None
    cert_sans: list[str] = field(default_factory=list)
    node_ip: str = ""
    control_plane: bool = True
    discovery_endpoint: str = ""
    token: str = ""
    ca_cert_hashes: list[str] = field(default_factory=list)
    certificate_key: str = ""
    kubelet_version: str = ""
    api_server_version: str = ""
    control_plane_count: int = 0
    ignore_preflight_errors: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KubeadmParams:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None}
        return cls(**known)


# --------------------------------------------------------------------------- versions and skew


def parse_version(field_name: str, value: str) -> tuple[int, int, int]:
    match = _VERSION_RE.match(str(value).strip())
    if not match:
        raise ConfigError(field_name, value, "is not a MAJOR.MINOR.PATCH version", "use a version like 1.35.0")
    major, minor, patch = (int(x) for x in match.groups())
    return major, minor, patch


def check_skew(kubelet_version: str, api_server_version: str) -> None:
    """Raise ConfigError when a kubelet of ``kubelet_version`` must not join an API server of the other."""
    kubelet = parse_version("kubelet_version", kubelet_version)
    server = parse_version("api_server_version", api_server_version)
    if kubelet[0] != server[0]:
        raise ConfigError(
            "kubelet_version",
            kubelet_version,
            f"major version differs from the API server's {api_server_version}",
            "install the kubelet of the cluster's major version",
        )
    if kubelet[1] > server[1]:
        raise ConfigError(
            "kubelet_version",
            kubelet_version,
            f"is newer than the API server ({api_server_version}); the skew policy forbids a kubelet newer "
            "than kube-apiserver",
            f"install kubelet {server[0]}.{server[1]}.x on this node (smcp_kubernetes_version), "
            "or upgrade the control plane first (playbook smcp.platform.upgrade)",
        )
    if server[1] - kubelet[1] > KUBELET_MAX_MINOR_LAG:
        raise ConfigError(
            "kubelet_version",
            kubelet_version,
            f"is more than {KUBELET_MAX_MINOR_LAG} minor versions older than the API server ({api_server_version})",
            f"install kubelet {server[0]}.{server[1] - KUBELET_MAX_MINOR_LAG}.x or newer on this node",
        )


def cluster_warnings(control_plane_count: int) -> list[str]:
    """Warnings about the control-plane layout (etcd runs separately, so an even count is fine)."""
    if control_plane_count == 2:
        return [
            "2 control planes: etcd runs separately, so the API survives losing one of them, but while one is "
            "down or in maintenance there is no fault tolerance left; use 3 control planes for high availability"
        ]
    return []


# --------------------------------------------------------------------------- validation


def _check_cidr(field_name: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(
            field_name, value, f"is not a network in CIDR notation ({exc})", "use e.g. 10.244.0.0/16"
        ) from exc


def _check_ip(field_name: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        raise ConfigError(
            field_name, value, "is not an IP address", "set smcp_node_ip to an address of the node"
        ) from exc


def split_host_port(field_name: str, value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port), with a ConfigError naming the fix."""
    text = str(value).strip()
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", text) or re.match(r"^([^:\[\]]+):(\d+)$", text)
    if not match:
        raise ConfigError(field_name, value, "is not host:port", "use e.g. 10.0.0.10:7443 or api.example.com:6443")
    host, port = match.group(1), int(match.group(2))
    if not 0 < port < 65536:
        raise ConfigError(field_name, value, "port out of range", "use a port between 1 and 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        if not _HOST_RE.match(host) or len(host) > 253:
            raise ConfigError(field_name, value, "host is neither an IP nor a DNS name", "fix the host") from exc
    return host, port


def _check_etcd_endpoint(index: int, value: str) -> None:
    name = f"etcd_endpoints[{index}]"
    match = re.match(r"^https://(.+)$", str(value))
    if not match:
        raise ConfigError(
            name, value, "is not an https:// URL (etcd runs with TLS only)", "use https://<etcd host IP>:2379"
        )
    split_host_port(name, match.group(1).rstrip("/"))


def normalise_taint(name: str, taint: Any) -> dict[str, str]:
    """Check one taint ({key, value?, effect?}; effect defaults to NoSchedule) and return it in API order."""
    if not isinstance(taint, dict) or not taint.get("key"):
        raise ConfigError(name, taint, "has no key", "write a taint as {key: K, value: V, effect: NoSchedule}")
    unknown = sorted(set(taint) - {"key", "value", "effect"})
    if unknown:
        raise ConfigError(name, taint, f"has unknown fields {unknown}", "use only key, value and effect")
    check_label_key(f"{name}.key", taint["key"])
    out = {"key": str(taint["key"])}
    if taint.get("value"):
        check_label_value(f"{name}.value", taint["value"])
        out["value"] = str(taint["value"])
    effect = taint.get("effect") or "NoSchedule"
    if effect not in TAINT_EFFECTS:
        raise ConfigError(f"{name}.effect", effect, "is not a taint effect", f"use one of {', '.join(TAINT_EFFECTS)}")
    out["effect"] = effect
    return out


def check_label_key(field_name: str, key: str) -> None:
    """A qualified name: optional DNS-subdomain prefix and '/', then a name of at most 63 characters."""
    text = str(key)
    prefix, _sep, name = text.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.match(prefix)):
        raise ConfigError(field_name, key, "prefix is not a DNS subdomain", "use a lower-case prefix like example.com/")
    if not name or len(name) > 63 or not _LABEL_NAME_RE.match(name):
        raise ConfigError(
            field_name,
            key,
            "is not a valid label/taint key",
            "use at most 63 characters [A-Za-z0-9-_.], starting and ending alphanumeric",
        )


def check_label_value(field_name: str, value: str) -> None:
    text = str(value)
    if len(text) > 63 or not _LABEL_VALUE_RE.match(text):
        raise ConfigError(
            field_name,
            value,
            "is not a valid label/taint value",
            "use at most 63 characters [A-Za-z0-9-_.], starting and ending alphanumeric (or empty)",
        )


# List options that must not be empty: field -> (what an empty one would mean, fix).
_NOT_EMPTY = {
    "etcd_endpoints": (
        "smcp runs kubeadm with external etcd",
        "put at least one host in the etcd group and run the etcd role first",
    ),
    "ca_cert_hashes": (
        "joining without pinning the cluster CA is unsafe",
        "pass ca_cert_hash returned by smcp.platform.bootstrap_token",
    ),
}


def _check_not_empty(params: KubeadmParams, field_name: str) -> None:
    if not getattr(params, field_name):
        why, fix = _NOT_EMPTY[field_name]
        raise ConfigError(field_name, [], f"is empty: {why}", fix)


def validate(params: KubeadmParams) -> list[str]:
    """Raise ConfigError on the first bad field; return warnings."""
    if params.kind not in ("init", "join"):
        raise ConfigError("kind", params.kind, "is not a kubeadm configuration kind", "use init or join")
    version = parse_version("kubernetes_version", params.kubernetes_version)
    if not _versions.is_supported(params.kubernetes_version):
        raise ConfigError(
            "kubernetes_version",
            params.kubernetes_version,
            "is not in the versions table (plugins/module_utils/versions.py)",
            f"use one of {', '.join(_versions.supported_versions())}",
        )
    if not params.node_name or len(params.node_name) > 253 or not _DNS_SUBDOMAIN_RE.match(params.node_name):
        raise ConfigError(
            "node_name",
            params.node_name,
            "is not a valid Kubernetes node name (lower-case RFC 1123 subdomain)",
            "rename the host in the inventory or set a lower-case hostname",
        )
    split_host_port("control_plane_endpoint", params.control_plane_endpoint)
    if params.node_ip:
        _check_ip("node_ip", params.node_ip)
    if not 0 < int(params.bind_port) < 65536:
        raise ConfigError("bind_port", params.bind_port, "is out of range", "set smcp_apiserver_port to 1-65535")
    if not params.cri_socket.startswith("unix://"):
        raise ConfigError(
            "cri_socket", params.cri_socket, "is not a unix:// socket URL", "use unix:///run/containerd/containerd.sock"
        )
    for index, taint in enumerate(params.taints or []):
        normalise_taint(f"taints[{index}]", taint)
    for index, check in enumerate(params.ignore_preflight_errors):
        if not re.match(r"^[A-Za-z0-9-]+$", str(check)):
            raise ConfigError(
                f"ignore_preflight_errors[{index}]",
                check,
                "is not a kubeadm preflight check name",
                "use names kubeadm prints in [ERROR Name] lines, e.g. Swap, NumCPU (or all)",
            )
    warnings = cluster_warnings(int(params.control_plane_count))
    if params.kind == "init" or params.control_plane:
        if not params.advertise_address:
            raise ConfigError(
                "advertise_address", "", "is required on a control plane", "set smcp_node_ip for this host"
            )
        _check_ip("advertise_address", params.advertise_address)
    if params.kind == "init":
        pods = _check_cidr("pod_subnet", params.pod_subnet)
        services = _check_cidr("service_subnet", params.service_subnet)
        if pods.version == services.version and pods.overlaps(services):
            raise ConfigError(
                "service_subnet",
                params.service_subnet,
                f"overlaps pod_subnet {params.pod_subnet}",
                "choose disjoint smcp_pod_cidr and smcp_service_cidr",
            )
        if services.version == 4 and services.prefixlen < 12:
            raise ConfigError(
                "service_subnet",
                params.service_subnet,
                "is larger than /12 (kube-apiserver refuses more than 2^20 service IPs)",
                "use a /12 or smaller network, e.g. 10.96.0.0/12",
            )
        if not _DNS_SUBDOMAIN_RE.match(params.dns_domain):
            raise ConfigError("dns_domain", params.dns_domain, "is not a DNS domain", "use cluster.local")
        _check_not_empty(params, "etcd_endpoints")
        for index, endpoint in enumerate(params.etcd_endpoints):
            _check_etcd_endpoint(index, endpoint)
        for name in ("etcd_ca_file", "etcd_cert_file", "etcd_key_file"):
            if not str(getattr(params, name)).startswith("/"):
                raise ConfigError(name, getattr(params, name), "is not an absolute path", "use an absolute path")
        if params.proxy_mode not in PROXY_MODES:
            raise ConfigError(
                "proxy_mode",
                params.proxy_mode,
                "is not a supported kube-proxy mode",
                f"use one of {', '.join(PROXY_MODES)}",
            )
        if params.proxy_mode == "nftables" and version[:2] < NFTABLES_MIN_MINOR:
            raise ConfigError(
                "proxy_mode",
                params.proxy_mode,
                f"needs Kubernetes {NFTABLES_MIN_MINOR[0]}.{NFTABLES_MIN_MINOR[1]} or newer",
                "use iptables or a newer smcp_kubernetes_version",
            )
        if params.image_repository and (
            "://" in params.image_repository or params.image_repository.endswith("/") or " " in params.image_repository
        ):
            raise ConfigError(
                "image_repository",
                params.image_repository,
                "is not a registry path",
                "use host[:port][/path] without scheme or trailing slash, e.g. mirror.example.com:5000/k8s",
            )
        for index, san in enumerate(params.cert_sans):
            try:
                ipaddress.ip_address(san)
            except ValueError as exc:
                if not _DNS_SUBDOMAIN_RE.match(str(san)):
                    raise ConfigError(f"cert_sans[{index}]", san, "is neither an IP nor a DNS name", "fix it") from exc
    else:
        split_host_port("discovery_endpoint", params.discovery_endpoint)
        if not _TOKEN_RE.match(params.token or ""):
            raise ConfigError(
                "token",
                "<hidden>",
                "is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})",
                "pass the token returned by smcp.platform.bootstrap_token",
            )
        _check_not_empty(params, "ca_cert_hashes")
        for index, value in enumerate(params.ca_cert_hashes):
            if not _CA_HASH_RE.match(str(value)):
                raise ConfigError(
                    f"ca_cert_hashes[{index}]", value, "is not sha256:<64 hex>", "pass the hash of the cluster CA key"
                )
        if params.control_plane and not _CERT_KEY_RE.match(params.certificate_key or ""):
            raise ConfigError(
                "certificate_key",
                "<hidden>",
                "is not 64 lower-case hex characters",
                "pass the key printed by 'kubeadm init phase upload-certs --upload-certs' on the first control plane",
            )
    if params.kubelet_version and params.api_server_version:
        check_skew(params.kubelet_version, params.api_server_version)
    return warnings


# --------------------------------------------------------------------------- rendering


def _kubernetes_version(params: KubeadmParams) -> str:
    major, minor, patch = parse_version("kubernetes_version", params.kubernetes_version)
    return f"v{major}.{minor}.{patch}"


def _node_registration(params: KubeadmParams) -> dict[str, Any]:
    taints = params.taints
    if taints is None:
        taints = [dict(CONTROL_PLANE_TAINT)] if (params.kind == "init" or params.control_plane) else []
    registration: dict[str, Any] = {
        "name": params.node_name,
        "criSocket": params.cri_socket,
        "taints": [normalise_taint(f"taints[{i}]", t) for i, t in enumerate(taints)],
        "imagePullPolicy": "IfNotPresent",
    }
    if params.node_ip:
        registration["kubeletExtraArgs"] = [{"name": "node-ip", "value": params.node_ip}]
    if params.ignore_preflight_errors:
        registration["ignorePreflightErrors"] = [str(c) for c in params.ignore_preflight_errors]
    return registration


def _local_api_endpoint(params: KubeadmParams) -> dict[str, Any]:
    return {"advertiseAddress": params.advertise_address, "bindPort": int(params.bind_port)}


def render_documents(params: KubeadmParams) -> list[dict[str, Any]]:
    """The kubeadm documents for ``params`` (call :func:`validate` first)."""
    if params.kind == "join":
        join: dict[str, Any] = {
            "apiVersion": KUBEADM_API,
            "kind": "JoinConfiguration",
            "nodeRegistration": _node_registration(params),
            "discovery": {
                "bootstrapToken": {
                    "apiServerEndpoint": params.discovery_endpoint,
                    "token": params.token,
                    "caCertHashes": list(params.ca_cert_hashes),
                },
                "tlsBootstrapToken": params.token,
            },
        }
        if params.control_plane:
            join["controlPlane"] = {
                "localAPIEndpoint": _local_api_endpoint(params),
                "certificateKey": params.certificate_key,
            }
        return [join]

    init = {
        "apiVersion": KUBEADM_API,
        "kind": "InitConfiguration",
        "localAPIEndpoint": _local_api_endpoint(params),
        "nodeRegistration": _node_registration(params),
    }
    endpoint_host, _port = split_host_port("control_plane_endpoint", params.control_plane_endpoint)
    sans = [endpoint_host, params.advertise_address, *params.cert_sans]
    cluster: dict[str, Any] = {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": params.cluster_name,
        "kubernetesVersion": _kubernetes_version(params),
        "controlPlaneEndpoint": params.control_plane_endpoint,
        "certificatesDir": "/etc/kubernetes/pki",
        "imageRepository": params.image_repository or "registry.k8s.io",
        "networking": {
            "podSubnet": params.pod_subnet,
            "serviceSubnet": params.service_subnet,
            "dnsDomain": params.dns_domain,
        },
        "etcd": {
            "external": {
                "endpoints": list(params.etcd_endpoints),
                "caFile": params.etcd_ca_file,
                "certFile": params.etcd_cert_file,
                "keyFile": params.etcd_key_file,
            }
        },
        "apiServer": {"certSANs": sorted(set(sans), key=sans.index)},
    }
    kubelet = {
        "apiVersion": KUBELET_API,
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "containerRuntimeEndpoint": params.cri_socket,
        "clusterDomain": params.dns_domain,
        "rotateCertificates": True,
    }
    proxy = {
        "apiVersion": KUBEPROXY_API,
        "kind": "KubeProxyConfiguration",
        "mode": params.proxy_mode,
        "clusterCIDR": params.pod_subnet,
    }
    return [init, cluster, kubelet, proxy]


def redact(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy with the secrets (bootstrap token, certificate key) replaced, for diffs and logs."""
    out = json.loads(json.dumps(docs))
    for doc in out:
        discovery = doc.get("discovery", {})
        if discovery.get("bootstrapToken", {}).get("token"):
            discovery["bootstrapToken"]["token"] = REDACTED
        if discovery.get("tlsBootstrapToken"):
            discovery["tlsBootstrapToken"] = REDACTED
        if doc.get("controlPlane", {}).get("certificateKey"):
            doc["controlPlane"]["certificateKey"] = REDACTED
    return out


# --------------------------------------------------------------------------- YAML


_PLAIN_RE = re.compile(r"^[A-Za-z0-9/_.][A-Za-z0-9/_.:@+=-]*$")
_YAML_SPECIAL = re.compile(
    r"^(true|false|yes|no|on|off|y|n|null|~|[-+]?[0-9][0-9_.:eE+-]*|\.inf|\.nan)$", re.IGNORECASE
)


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if _PLAIN_RE.match(text) and not _YAML_SPECIAL.match(text) and not text.endswith(":"):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                _emit(item, indent + 2, lines)
            elif isinstance(item, list) and item:
                lines.append(f"{pad}{_scalar(key)}:")
                _emit(item, indent + 2, lines)
            else:
                lines.append(f"{pad}{_scalar(key)}: {_inline(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub: list[str] = []
                _emit(item, indent + 2, sub)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_inline(item)}")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(docs: list[dict[str, Any]], header: str = "") -> str:
    """Multi-document YAML, keys in the given order, stable byte for byte."""
    lines: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    for doc in docs:
        lines.append("---")
        _emit(doc, 0, lines)
    return "\n".join(lines) + "\n"


HEADER = "Managed by smcp.platform (module kubeadm_config): local changes are overwritten."


def render(params: KubeadmParams) -> tuple[str, str, list[str]]:
    """Validate and render: (file text, redacted text for diffs, warnings)."""
    warnings = validate(params)
    docs = render_documents(params)
    return to_yaml(docs, HEADER), to_yaml(redact(docs), HEADER), warnings
