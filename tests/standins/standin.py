#!/usr/bin/env python3
"""Stand-ins for kubeadm, kubelet, kubectl and crictl on sandbox hosts (tests only, never the product).

One program, dispatched on the name it is called by (argv[0]): tests/standins/bundle.py packs it with a
pure-Python PyYAML into one executable zip (python3 only on the host) and installs it as kubeadm, kubelet,
kubectl and crictl. See docs/testing.md for what is real and what is approximated.

- Every kubeadm/kubectl/crictl call appends {"argv", "config", "host", "ts", "version"} to
  /var/lib/smcp-standin/calls.jsonl.
- The version reported is the one the bundle was built for (BUILT_VERSION below, rewritten by bundle.py;
  SMCP_STANDIN_VERSION overrides it for tests).
- SMCP_STANDIN_ROOT relocates every absolute path (unit tests); with it set no systemd unit is touched, and
  SMCP_STANDIN_API (a URL) replaces the API server of every kubeconfig.
- The API is the Kubernetes API test server (tests/standins/kubeapi.py) behind the TLS "kube-apiserver"
  stand-in that init/join start on control planes (`kubeadm standin-apiserver`, systemd unit
  smcp-standin-apiserver.service), which answers /readyz /livez /healthz /version itself and proxies the rest
  to the URL in /etc/smcp-standin/upstream (or BUILT_UPSTREAM).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

BUILT_VERSION = "1.35.0"
BUILT_UPSTREAM = ""
VERSION = os.environ.get("SMCP_STANDIN_VERSION") or BUILT_VERSION
ROOT = os.environ.get("SMCP_STANDIN_ROOT", "")
API_OVERRIDE = os.environ.get("SMCP_STANDIN_API", "")
KUBEADM_API = "kubeadm.k8s.io/v1beta4"
APISERVER_UNIT = "smcp-standin-apiserver.service"
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


class Failure(Exception):
    """A kubeadm-style error: printed as `error: ...` with exit code 1."""


def p(path: str) -> Path:
    """An absolute host path, relocated under SMCP_STANDIN_ROOT in tests."""
    return Path(ROOT + path) if ROOT else Path(path)


def hostname() -> str:
    return os.environ.get("SMCP_STANDIN_HOSTNAME") or socket.gethostname().lower()


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_version(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", str(text).strip())
    if not m:
        raise Failure(f'invalid version "{text}": expected vMAJOR.MINOR.PATCH')
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def write(path: str, text: str | bytes, mode: int = 0o644) -> Path:
    target = p(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    target.chmod(mode)
    return target


def record(argv: list[str], config_text: str | None, injected: str = "") -> None:
    entry = {"argv": argv, "config": config_text, "host": hostname(), "ts": time.time(), "version": VERSION}
    if injected:
        entry["injected_failure"] = injected
    target = p("/var/lib/smcp-standin/calls.jsonl")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    target.chmod(0o600)


def injected_failure(args: list[str]) -> str:
    """Failure injection for tests: a line (regex) of /etc/smcp-standin/fail matching the kubeadm arguments."""
    rules = p("/etc/smcp-standin/fail")
    if not rules.exists():
        return ""
    joined = " ".join(args)
    for line in rules.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and re.search(line.strip(), joined):
            return line.strip()
    return ""


def flag(args: list[str], name: str, default: str | None = None) -> str | None:
    """--name=value or --name value."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def systemd() -> bool:
    return not ROOT and shutil.which("systemctl") is not None


def systemctl(*args: str) -> None:
    if systemd():
        subprocess.run(["systemctl", *args], check=False, capture_output=True)


# --------------------------------------------------------------------------- kubeadm configuration

ARG_LIST = "a list of {name, value} (v1beta4 changed extraArgs from a map to a list)"
FIELDS: dict[str, set[str]] = {
    "InitConfiguration": {
        "apiVersion",
        "kind",
        "bootstrapTokens",
        "dryRun",
        "nodeRegistration",
        "localAPIEndpoint",
        "certificateKey",
        "skipPhases",
        "patches",
        "timeouts",
    },
    "ClusterConfiguration": {
        "apiVersion",
        "kind",
        "etcd",
        "networking",
        "kubernetesVersion",
        "controlPlaneEndpoint",
        "apiServer",
        "controllerManager",
        "scheduler",
        "dns",
        "proxy",
        "certificatesDir",
        "imageRepository",
        "featureGates",
        "clusterName",
        "encryptionAlgorithm",
        "certificateValidityPeriod",
        "caCertificateValidityPeriod",
    },
    "JoinConfiguration": {
        "apiVersion",
        "kind",
        "dryRun",
        "nodeRegistration",
        "caCertPath",
        "discovery",
        "controlPlane",
        "skipPhases",
        "patches",
        "timeouts",
    },
    "ResetConfiguration": {
        "apiVersion",
        "kind",
        "cleanupTmpDir",
        "certificatesDir",
        "criSocket",
        "dryRun",
        "force",
        "ignorePreflightErrors",
        "skipPhases",
        "unmountFlags",
    },
    "UpgradeConfiguration": {"apiVersion", "kind", "apply", "node", "plan", "diff", "timeouts"},
    "nodeRegistration": {
        "name",
        "criSocket",
        "taints",
        "kubeletExtraArgs",
        "ignorePreflightErrors",
        "imagePullPolicy",
        "imagePullSerial",
    },
    "localAPIEndpoint": {"advertiseAddress", "bindPort"},
    "discovery": {"bootstrapToken", "file", "tlsBootstrapToken"},
    "bootstrapToken": {"token", "apiServerEndpoint", "caCertHashes", "unsafeSkipCAVerification"},
    "controlPlane": {"localAPIEndpoint", "certificateKey"},
    "etcd": {"local", "external"},
    "external": {"endpoints", "caFile", "certFile", "keyFile"},
    "networking": {"serviceSubnet", "podSubnet", "dnsDomain"},
    "apiServer": {"extraArgs", "extraVolumes", "extraEnvs", "certSANs"},
    "controllerManager": {"extraArgs", "extraVolumes", "extraEnvs"},
    "scheduler": {"extraArgs", "extraVolumes", "extraEnvs"},
    "timeouts": {
        "controlPlaneComponentHealthCheck",
        "kubeletHealthCheck",
        "kubernetesAPICall",
        "etcdAPICall",
        "tlsBootstrap",
        "discovery",
        "upgradeManifests",
    },
    "bootstrapTokens[]": {"token", "description", "ttl", "expires", "usages", "groups"},
    "taints[]": {"key", "value", "effect", "timeAdded"},
}
OTHER_KINDS = {
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"),
}
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")


def _check_fields(kind: str, where: str, value: Any, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{where}: expected an object, got {type(value).__name__}")
        return
    allowed = FIELDS.get(kind)
    if allowed is not None:
        for key in value:
            if key not in allowed:
                errors.append(f'strict decoding error: unknown field "{where}.{key}"'.replace("..", "."))
    for key, sub in value.items():
        path = f"{where}.{key}".lstrip(".")
        if key in ("extraArgs", "kubeletExtraArgs"):
            if not isinstance(sub, list) or not all(isinstance(a, dict) and set(a) <= {"name", "value"} for a in sub):
                errors.append(f"{path}: must be {ARG_LIST}")
        elif key in ("bootstrapTokens", "taints") and isinstance(sub, list):
            for i, item in enumerate(sub):
                _check_fields(f"{key}[]", f"{path}[{i}]", item, errors)
        elif key in FIELDS and isinstance(sub, dict) and key not in ("etcd",):
            _check_fields(key, path, sub, errors)
        elif key == "etcd" and isinstance(sub, dict):
            _check_fields("etcd", path, sub, errors)
            if isinstance(sub.get("external"), dict):
                _check_fields("external", f"{path}.external", sub["external"], errors)


def load_config(path: str) -> tuple[str, dict[str, dict[str, Any]]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise Failure(f"unable to read config from {path!r}: {exc}") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise Failure(f"unable to decode config from {path!r}: {exc}") from exc
    by_kind: dict[str, dict[str, Any]] = {}
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            raise Failure(f"{path}: every document needs apiVersion and kind (Object 'Kind' is missing in {doc!r})")
        if doc["kind"] in by_kind:
            raise Failure(f'{path}: more than one document of kind "{doc["kind"]}"')
        by_kind[doc["kind"]] = doc
    return text, by_kind


def validate(by_kind: dict[str, dict[str, Any]]) -> list[str]:
    """kubeadm-like validation: known groups/kinds, strict fields, required and well-formed values."""
    errors: list[str] = []
    for kind, doc in by_kind.items():
        api = doc["apiVersion"]
        if api.startswith("kubeadm.k8s.io/"):
            if api != KUBEADM_API:
                errors.append(f"{kind}: apiVersion {api} is not supported by this kubeadm stand-in: use {KUBEADM_API}")
            elif kind not in FIELDS:
                errors.append(f'no kind "{kind}" is registered for version "{api}"')
            else:
                _check_fields(kind, "", doc, errors)
        elif (api, kind) not in OTHER_KINDS:
            errors.append(f'no kind "{kind}" is registered for version "{api}"')
    init, join, cluster = (
        by_kind.get("InitConfiguration"),
        by_kind.get("JoinConfiguration"),
        by_kind.get("ClusterConfiguration"),
    )
    if init and join:
        errors.append("InitConfiguration and JoinConfiguration cannot be mixed in one file")
    for doc in (d for d in (init, join) if d):
        endpoint = doc.get("localAPIEndpoint") or (doc.get("controlPlane") or {}).get("localAPIEndpoint") or {}
        if endpoint.get("advertiseAddress"):
            try:
                ipaddress.ip_address(endpoint["advertiseAddress"])
            except ValueError:
                errors.append(
                    f"localAPIEndpoint.advertiseAddress: Invalid value: {endpoint['advertiseAddress']!r}: "
                    "must be an IP address"
                )
        port = endpoint.get("bindPort", 6443)
        if not isinstance(port, int) or not 0 < port < 65536:
            errors.append(f"localAPIEndpoint.bindPort: Invalid value: {port!r}: must be a port number")
        for taint in (doc.get("nodeRegistration") or {}).get("taints") or []:
            if isinstance(taint, dict) and taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                errors.append(
                    f"nodeRegistration.taints: Invalid value: {taint!r}: effect must be NoSchedule, "
                    "PreferNoSchedule or NoExecute"
                )
    for token in (init or {}).get("bootstrapTokens") or []:
        if isinstance(token, dict) and token.get("token") and not TOKEN_RE.match(str(token["token"])):
            errors.append(
                'bootstrapTokens.token: Invalid value: "<redacted>": the bootstrap token must be of form '
                '"[a-z0-9]{6}.[a-z0-9]{16}"'
            )
    if init and init.get("certificateKey") and not re.fullmatch(r"[0-9a-f]{64}", str(init["certificateKey"])):
        errors.append("certificateKey: Invalid value: must be 32 bytes hex-encoded (64 characters)")
    if join:
        discovery = join.get("discovery") or {}
        bt = discovery.get("bootstrapToken")
        if not bt and not discovery.get("file"):
            errors.append("discovery: Invalid value: bootstrapToken or file must be set")
        if bt:
            if not bt.get("apiServerEndpoint"):
                errors.append("discovery.bootstrapToken.apiServerEndpoint: Required value")
            if not TOKEN_RE.match(str(bt.get("token") or "")):
                errors.append(
                    'discovery.bootstrapToken.token: Invalid value: "<redacted>": the bootstrap token must '
                    'be of form "[a-z0-9]{6}.[a-z0-9]{16}"'
                )
            hashes = bt.get("caCertHashes") or []
            if not hashes and not bt.get("unsafeSkipCAVerification"):
                errors.append(
                    "discovery.bootstrapToken.caCertHashes: Invalid value: []: using token-based discovery "
                    "without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your "
                    "kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag"
                )
            for h in hashes:
                if not re.fullmatch(r"sha256:[0-9a-f]{64}", str(h)):
                    errors.append(
                        f"discovery.bootstrapToken.caCertHashes: Invalid value: {h!r}: expected sha256:<64 hex>"
                    )
        cp = join.get("controlPlane")
        if cp is not None:
            key = (cp or {}).get("certificateKey")
            if key and not re.fullmatch(r"[0-9a-f]{64}", str(key)):
                errors.append("controlPlane.certificateKey: Invalid value: must be 32 bytes hex-encoded")
    if cluster:
        try:
            major, minor, _ = parse_version(str(cluster.get("kubernetesVersion") or f"v{VERSION}"))
            own = parse_version(VERSION)
            if (major, minor) > own[:2]:
                errors.append(
                    f"this version of kubeadm only supports deploying clusters with the control plane "
                    f"version <= v{own[0]}.{own[1]}.x. Current version: {cluster.get('kubernetesVersion')}"
                )
            elif minor < own[1] - 1:
                errors.append(
                    f"this version of kubeadm only supports deploying clusters with the control plane "
                    f"version >= {own[0]}.{own[1] - 1}.0. Current version: "
                    f"{cluster.get('kubernetesVersion')}"
                )
        except Failure as exc:
            errors.append(f"kubernetesVersion: {exc}")
        net = cluster.get("networking") or {}
        for field in ("podSubnet", "serviceSubnet"):
            if net.get(field):
                for cidr in str(net[field]).split(","):
                    try:
                        ipaddress.ip_network(cidr.strip(), strict=True)
                    except ValueError:
                        errors.append(f"networking.{field}: Invalid value: {net[field]!r}: couldn't parse subnet")
        endpoint = cluster.get("controlPlaneEndpoint")
        if endpoint and not re.fullmatch(r"\[?[A-Za-z0-9.:-]+\]?(:\d{1,5})?", str(endpoint)):
            errors.append(f"controlPlaneEndpoint: Invalid value: {endpoint!r}: must be host[:port]")
        external = (cluster.get("etcd") or {}).get("external")
        if external is not None:
            if not external.get("endpoints"):
                errors.append("etcd.external.endpoints: Required value: not set")
            for url in external.get("endpoints") or []:
                if not re.fullmatch(r"https?://[^/]+", str(url)):
                    errors.append(f"etcd.external.endpoints: Invalid value: {url!r}: must be an http(s) URL")
            if any(external.get(k) for k in ("caFile", "certFile", "keyFile")) and not all(
                external.get(k) for k in ("caFile", "certFile", "keyFile")
            ):
                errors.append("etcd.external: caFile, certFile and keyFile must all be set (or none)")
    kubelet = by_kind.get("KubeletConfiguration")
    if kubelet and kubelet.get("cgroupDriver", "systemd") not in ("systemd", "cgroupfs"):
        errors.append(f"KubeletConfiguration.cgroupDriver: Invalid value: {kubelet['cgroupDriver']!r}")
    return errors


def config_from_args(args: list[str], required: bool = True) -> tuple[str | None, dict[str, dict[str, Any]]]:
    path = flag(args, "--config")
    if not path:
        if required:
            raise Failure("--config is required by this stand-in (it reads everything from the config file)")
        return None, {}
    text, by_kind = load_config(path)
    errors = validate(by_kind)
    if errors:
        raise Failure("invalid configuration:\n  " + "\n  ".join(errors))
    return text, by_kind


# --------------------------------------------------------------------------- PKI (openssl CLI)


def openssl(*args: str, stdin: bytes | None = None) -> bytes:
    res = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)
    if res.returncode != 0:
        raise Failure(f"openssl {' '.join(args[:2])} failed: {res.stderr.decode(errors='replace').strip()}")
    return res.stdout


def new_key(path: Path, algorithm: str = "RSA-2048") -> None:
    if algorithm.startswith("ECDSA"):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))
    else:
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(path))
    path.chmod(0o600)


VALIDITY = {"leaf": 365, "ca": 3650}  # days; ClusterConfiguration.certificateValidityPeriod/caCertificate...


def set_validity(cluster: dict[str, Any]) -> None:
    """kubeadm v1beta4's certificateValidityPeriod and caCertificateValidityPeriod (Go durations)."""
    for field, kind in (("certificateValidityPeriod", "leaf"), ("caCertificateValidityPeriod", "ca")):
        m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", str(cluster.get(field) or ""))
        if cluster.get(field) and m and m.group(0):
            VALIDITY[kind] = max(1, int(m.group(1) or 0) // 24)


def leaf_days() -> int:
    """Days a new leaf certificate is valid: /etc/smcp-standin/cert-days (tests of renewal) or VALIDITY."""
    override = p("/etc/smcp-standin/cert-days")
    if override.exists():
        return max(1, int(override.read_text(encoding="utf-8").strip()))
    return VALIDITY["leaf"]


def new_ca(pki: Path, name: str, cn: str, algorithm: str) -> None:
    key, crt = pki / f"{name}.key", pki / f"{name}.crt"
    if key.exists() and crt.exists():
        return
    new_key(key, algorithm)
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(key),
        "-days",
        str(VALIDITY["ca"]),
        "-subj",
        f"/CN={cn}",
        "-out",
        str(crt),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
    )


def sign(
    pki: Path,
    ca: str,
    key: Path,
    crt: Path,
    subject: str,
    usage: str,
    sans: list[str] | None = None,
    days: int = 0,
    algorithm: str = "RSA-2048",
) -> None:
    """A leaf certificate signed by pki/<ca>.crt (key reused if present, as kubeadm renew does)."""
    days = days or leaf_days()
    if not key.exists():
        new_key(key, algorithm)
    csr = openssl("req", "-new", "-key", str(key), "-subj", subject)
    ext = [
        f"extendedKeyUsage={usage}",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "basicConstraints=critical,CA:FALSE",
    ]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    with tempfile.NamedTemporaryFile("w", suffix=".ext", delete=False) as fh:
        fh.write("\n".join(ext) + "\n")
        extfile = fh.name
    try:
        openssl(
            "x509",
            "-req",
            "-CA",
            str(pki / f"{ca}.crt"),
            "-CAkey",
            str(pki / f"{ca}.key"),
            "-CAcreateserial",
            "-days",
            str(days),
            "-extfile",
            extfile,
            "-out",
            str(crt),
            stdin=csr,
        )
    finally:
        os.unlink(extfile)
    (pki / f"{ca}.srl").unlink(missing_ok=True)


def ca_hash(ca_pem: bytes) -> str:
    """sha256:<hex> of the CA's SubjectPublicKeyInfo, as --discovery-token-ca-cert-hash."""
    pub = openssl("x509", "-noout", "-pubkey", stdin=ca_pem)
    der = openssl("pkey", "-pubin", "-outform", "DER", stdin=pub)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def kubeconfig(
    server: str,
    ca_pem: bytes,
    user: str,
    cert: bytes | None = None,
    key: bytes | None = None,
    cert_path: str = "",
    key_path: str = "",
    cluster: str = "kubernetes",
) -> str:
    creds: dict[str, str] = {}
    if cert is not None and key is not None:
        creds = {"client-certificate-data": b64(cert), "client-key-data": b64(key)}
    elif cert_path:
        creds = {"client-certificate": cert_path, "client-key": key_path}
    ctx = f"{user}@{cluster}"
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster, "cluster": {"certificate-authority-data": b64(ca_pem), "server": server}}],
            "contexts": [{"name": ctx, "context": {"cluster": cluster, "user": user}}],
            "current-context": ctx,
            "preferences": {},
            "users": [{"name": user, "user": creds}],
        },
        sort_keys=False,
    )


def client_kubeconfig(pki: Path, path: str, server: str, user: str, subject: str, cluster: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key, crt = Path(tmp) / "c.key", Path(tmp) / "c.crt"
        sign(pki, "ca", key, crt, subject, "clientAuth")
        write(
            path,
            kubeconfig(
                server, (pki / "ca.crt").read_bytes(), user, crt.read_bytes(), key.read_bytes(), cluster=cluster
            ),
            0o600,
        )


# --------------------------------------------------------------------------- talking to the API


class Api:
    """A minimal Kubernetes API client over a kubeconfig (retries until the deadline while unreachable)."""

    def __init__(self, server: str, ca_pem: bytes | None, verify: bool = True) -> None:
        self.server = API_OVERRIDE or server.rstrip("/")
        self.ctx: ssl.SSLContext | None = None
        if self.server.startswith("https://"):
            self.ctx = (
                ssl.create_default_context(cadata=ca_pem.decode())
                if (verify and ca_pem)
                else (ssl._create_unverified_context())
            )

    @classmethod
    def from_kubeconfig(cls, path: str) -> Api:
        cfg = yaml.safe_load(p(path).read_text(encoding="utf-8"))
        cluster = cfg["clusters"][0]["cluster"]
        ca = (
            base64.b64decode(cluster["certificate-authority-data"])
            if "certificate-authority-data" in cluster
            else (p(cluster["certificate-authority"]).read_bytes() if cluster.get("certificate-authority") else None)
        )
        return cls(cluster["server"], ca)

    def call(
        self, method: str, path: str, body: Any = None, ctype: str = "application/json", deadline: float = 120.0
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        end = time.monotonic() + deadline
        while True:
            req = urllib.request.Request(
                self.server + path,
                data=data,
                method=method,
                headers={
                    "Content-Type": ctype,
                    "Accept": "application/json",
                    "User-Agent": f"kubeadm-standin/v{VERSION}",
                },
            )
            try:
                with urllib.request.urlopen(req, timeout=15, context=self.ctx) as resp:
                    return resp.status, json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                if exc.code in (502, 503, 504) and time.monotonic() < end:
                    time.sleep(2)
                    continue
                try:
                    return exc.code, json.loads(payload or b"null")
                except ValueError:
                    return exc.code, {"message": payload.decode(errors="replace")}
            except (urllib.error.URLError, OSError) as exc:
                if time.monotonic() >= end:
                    raise Failure(f"unable to reach the API server at {self.server}{path}: {exc}") from exc
                time.sleep(2)

    def get(self, path: str) -> Any:
        code, obj = self.call("GET", path)
        return obj if code == 200 else None

    def ensure(self, collection: str, obj: dict[str, Any]) -> None:
        """Create, or replace what exists (kubeadm's CreateOrUpdate)."""
        code, out = self.call("POST", collection, obj)
        if code == 409:
            name = obj["metadata"]["name"]
            current = self.get(f"{collection}/{name}") or {}
            obj = dict(
                obj, metadata=dict(obj["metadata"], resourceVersion=current.get("metadata", {}).get("resourceVersion"))
            )
            code, out = self.call("PUT", f"{collection}/{name}", obj)
        if code >= 300:
            raise Failure(f"unable to write {collection}/{obj['metadata']['name']}: {code} {out}")

    def patch(self, path: str, body: Any, ctype: str = "application/strategic-merge-patch+json") -> Any:
        code, out = self.call("PATCH", path, body, ctype)
        if code >= 300:
            raise Failure(f"unable to patch {path}: {code} {out}")
        return out


def wait_for_node(api: Api, name: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while True:
        if api.get(f"/api/v1/nodes/{name}"):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(1)


# --------------------------------------------------------------------------- kubeadm commands


def node_name(doc: dict[str, Any]) -> str:
    return str((doc.get("nodeRegistration") or {}).get("name") or hostname())


def write_kubelet_files(registration: dict[str, Any], kubelet_yaml: str, image_repository: str) -> None:
    write("/var/lib/kubelet/config.yaml", kubelet_yaml)
    args = [
        f"--container-runtime-endpoint={registration.get('criSocket') or 'unix:///run/containerd/containerd.sock'}",
        f"--pod-infra-container-image={image_repository}/pause:3.10",
    ]
    if registration.get("name") and registration["name"] != hostname():
        args.append(f"--hostname-override={registration['name']}")
    for arg in registration.get("kubeletExtraArgs") or []:
        args.append(f"--{arg['name']}={arg.get('value', '')}")
    write("/var/lib/kubelet/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{" ".join(args)}"\n')


def kubelet_config_yaml(doc: dict[str, Any] | None, cluster: dict[str, Any]) -> str:
    base = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "clusterDNS": ["10.96.0.10"],
        "clusterDomain": (cluster.get("networking") or {}).get("dnsDomain", "cluster.local"),
        "staticPodPath": "/etc/kubernetes/manifests",
        "rotateCertificates": True,
    }
    base.update(doc or {})
    return yaml.safe_dump(base, sort_keys=False)


def start_kubelet() -> None:
    systemctl("daemon-reload")
    systemctl("restart", "kubelet.service")


def upstream_url() -> str:
    f = p("/etc/smcp-standin/upstream")
    url = f.read_text(encoding="utf-8").strip() if f.exists() else BUILT_UPSTREAM
    if not url:
        raise Failure(
            "the kube-apiserver stand-in has no upstream: write the Kubernetes API test server URL to "
            "/etc/smcp-standin/upstream (or build the bundle with --upstream URL)"
        )
    return url


def control_plane_files(pki: Path, cluster: dict[str, Any], advertise: str, port: int, name: str, version: str) -> None:
    """apiserver certificate, static pod manifests and the apiserver stand-in (what a control plane runs)."""
    algorithm = cluster.get("encryptionAlgorithm", "RSA-2048")
    endpoint_host = str(cluster.get("controlPlaneEndpoint") or "").rsplit(":", 1)[0].strip("[]")
    service_ip = str(ipaddress.ip_network((cluster.get("networking") or {}).get("serviceSubnet", "10.96.0.0/12"))[1])
    domain = (cluster.get("networking") or {}).get("dnsDomain", "cluster.local")
    sans = {
        f"DNS:{n}"
        for n in (
            name,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{domain}",
        )
    }
    for entry in [endpoint_host, advertise, service_ip, *((cluster.get("apiServer") or {}).get("certSANs") or [])]:
        if not entry:
            continue
        try:
            ipaddress.ip_address(entry)
            sans.add(f"IP:{entry}")
        except ValueError:
            sans.add(f"DNS:{entry}")
    for crt in ("apiserver.crt", "apiserver.key"):
        (pki / crt).unlink(missing_ok=True)
    sign(
        pki,
        "ca",
        pki / "apiserver.key",
        pki / "apiserver.crt",
        "/CN=kube-apiserver",
        "serverAuth",
        sorted(sans),
        algorithm=algorithm,
    )
    sign(
        pki,
        "ca",
        pki / "apiserver-kubelet-client.key",
        pki / "apiserver-kubelet-client.crt",
        "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client",
        "clientAuth",
        algorithm=algorithm,
    )
    sign(
        pki,
        "front-proxy-ca",
        pki / "front-proxy-client.key",
        pki / "front-proxy-client.crt",
        "/CN=front-proxy-client",
        "clientAuth",
        algorithm=algorithm,
    )
    write_manifests(cluster, advertise, port, version)
    local = f"https://{advertise or '127.0.0.1'}:{port}"
    ca_name = cluster.get("clusterName", "kubernetes")
    client_kubeconfig(
        pki,
        "/etc/kubernetes/controller-manager.conf",
        local,
        "system:kube-controller-manager",
        "/CN=system:kube-controller-manager",
        ca_name,
    )
    client_kubeconfig(
        pki, "/etc/kubernetes/scheduler.conf", local, "system:kube-scheduler", "/CN=system:kube-scheduler", ca_name
    )
    start_apiserver(port, version)


def write_manifests(cluster: dict[str, Any], advertise: str, port: int, version: str) -> None:
    repo = cluster.get("imageRepository") or "registry.k8s.io"
    etcd = ((cluster.get("etcd") or {}).get("external") or {}).get("endpoints") or ["https://127.0.0.1:2379"]
    net = cluster.get("networking") or {}
    commands = {
        "kube-apiserver": [
            f"--advertise-address={advertise}",
            f"--secure-port={port}",
            f"--etcd-servers={','.join(etcd)}",
            f"--service-cluster-ip-range={net.get('serviceSubnet', '10.96.0.0/12')}",
        ],
        "kube-controller-manager": ["--allocate-node-cidrs=true", f"--cluster-cidr={net.get('podSubnet', '')}"],
        "kube-scheduler": ["--kubeconfig=/etc/kubernetes/scheduler.conf"],
    }
    for component, args in commands.items():
        extra = [
            f"--{a['name']}={a.get('value', '')}"
            for a in (
                cluster.get(
                    {
                        "kube-apiserver": "apiServer",
                        "kube-controller-manager": "controllerManager",
                        "kube-scheduler": "scheduler",
                    }[component]
                )
                or {}
            ).get("extraArgs")
            or []
        ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": component,
                "namespace": "kube-system",
                "labels": {"component": component, "tier": "control-plane"},
            },
            "spec": {
                "hostNetwork": True,
                "priorityClassName": "system-node-critical",
                "containers": [
                    {
                        "name": component,
                        "image": f"{repo}/{component}:v{version}",
                        "command": [component, *args, *extra],
                    }
                ],
            },
        }
        write(
            f"/etc/kubernetes/manifests/{component}.yaml",
            "# written by the kubeadm stand-in: nothing runs this manifest\n" + yaml.safe_dump(pod, sort_keys=False),
            0o600,
        )


def start_apiserver(port: int, version: str) -> None:
    cfg = {
        "port": port,
        "cert": str(p("/etc/kubernetes/pki/apiserver.crt")),
        "key": str(p("/etc/kubernetes/pki/apiserver.key")),
        "upstream": upstream_url(),
        "version": version,
    }
    write("/etc/smcp-standin/apiserver.json", json.dumps(cfg, indent=1) + "\n", 0o600)
    exe = os.path.realpath(sys.argv[0])
    write(
        f"/etc/systemd/system/{APISERVER_UNIT}",
        (
            "# written by the kubeadm stand-in (tests only)\n[Unit]\nDescription=kube-apiserver stand-in (TLS, proxies "
            "to the Kubernetes API test server)\nAfter=network-online.target\n\n[Service]\n"
            f"ExecStart=/usr/bin/python3 {exe} standin-apiserver --config /etc/smcp-standin/apiserver.json\n"
            "Restart=always\nRestartSec=2\n\n[Install]\nWantedBy=multi-user.target\n"
        ),
    )
    if not systemd():
        return
    systemctl("daemon-reload")
    systemctl("enable", APISERVER_UNIT)
    systemctl("restart", APISERVER_UNIT)
    ctx = ssl._create_unverified_context()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", timeout=3, context=ctx) as r:
                if r.status == 200:
                    log(f"[control-plane-check] kube-apiserver stand-in is healthy on port {port}")
                    return
        except OSError:
            time.sleep(0.5)
    raise Failure(
        f"the kube-apiserver stand-in did not become ready on port {port} within 60s (journalctl -u {APISERVER_UNIT})"
    )


def upload_certs(api: Api, key: str) -> None:
    pki = p("/etc/kubernetes/pki")
    data = {
        n.replace("/", "-"): b64((pki / n).read_bytes())
        for n in ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key")
        if (pki / n).exists()
    }
    stored = api.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    cluster = yaml.safe_load(stored["data"]["ClusterConfiguration"]) if stored else {}
    for field, entry in EXTERNAL_ETCD.items():  # kubeadm uploads the external etcd client files too
        path = external_etcd(cluster).get(field)
        if path and p(path).exists():
            data[entry] = b64(p(path).read_bytes())
    # kubeadm encrypts each entry with AES-GCM under the certificate key; stdlib has no AES, so the stand-in
    # stores them base64 only and checks the key by its sha256 (documented in docs/testing.md).
    data["certificate-key-sha256"] = b64(hashlib.sha256(key.encode()).hexdigest())
    api.ensure(
        "/api/v1/namespaces/kube-system/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "kubeadm-certs", "namespace": "kube-system"},
            "data": data,
        },
    )
    log('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
    log(f"[upload-certs] Using certificate key:\n{key}")


def token_secret(token: str, ttl_seconds: int = 86400, description: str = "") -> dict[str, Any]:
    tid, tsecret = token.split(".")
    expires = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(seconds=ttl_seconds)
    data = {
        "token-id": tid,
        "token-secret": tsecret,
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
        "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if description:
        data["description"] = description
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": f"bootstrap-token-{tid}", "namespace": "kube-system"},
        "data": {k: b64(v) for k, v in data.items()},
    }


def new_token() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return (
        "".join(secrets.choice(alphabet) for _ in range(6)) + "." + "".join(secrets.choice(alphabet) for _ in range(16))
    )


def mark_control_plane(api: Api, name: str, registration: dict[str, Any]) -> None:
    taints = registration["taints"] if "taints" in registration else [CONTROL_PLANE_TAINT]
    if not wait_for_node(api, name, 120 if systemd() else 0):
        if systemd():
            raise Failure(
                f'[mark-control-plane] the Node "{name}" was not registered by the kubelet within 120s '
                "(systemctl status kubelet)"
            )
        log(f"[mark-control-plane] skipped: no Node {name} (no kubelet runs outside a host)")
        return
    api.patch(
        f"/api/v1/nodes/{name}",
        {
            "metadata": {
                "labels": {
                    "node-role.kubernetes.io/control-plane": "",
                    "node.kubernetes.io/exclude-from-external-load-balancers": "",
                }
            },
            "spec": {"taints": taints or None},
        },
        "application/merge-patch+json",
    )
    log(f"[mark-control-plane] Marking the node {name} as control-plane by adding the labels and taints {taints}")


def preflight(args: list[str], files: list[str]) -> None:
    ignored = (flag(args, "--ignore-preflight-errors") or "").lower()
    if "all" in ignored.split(","):
        return
    found = [f for f in files if p(f).exists()]
    if found:
        raise Failure(
            "[preflight] Some fatal errors occurred:\n"
            + "\n".join(f"\t[ERROR FileAvailable-{f.replace('/', '-')}]: {f} already exists" for f in found)
            + "\n[preflight] If you know what you are doing, you can make a check non-fatal with "
            "`--ignore-preflight-errors=...`"
        )


EXTERNAL_ETCD = {"caFile": "external-etcd-ca.crt", "certFile": "external-etcd.crt", "keyFile": "external-etcd.key"}


def external_etcd(cluster: dict[str, Any]) -> dict[str, Any]:
    return (cluster.get("etcd") or {}).get("external") or {}


def check_external_etcd(args: list[str], cluster: dict[str, Any]) -> None:
    """kubeadm's ExternalEtcdClientCertificates and ExternalEtcdVersion preflight checks (on a host only)."""
    ext = external_etcd(cluster)
    ignored = {i.strip().lower() for i in (flag(args, "--ignore-preflight-errors") or "").split(",")}
    if not ext or ROOT or "all" in ignored:
        return
    errors = []
    if "externaletcdclientcertificates" not in ignored:
        errors += [
            f"[ERROR ExternalEtcdClientCertificates]: {ext[k]} doesn't exist"
            for k in EXTERNAL_ETCD
            if ext.get(k) and not p(ext[k]).exists()
        ]
    if not errors and "externaletcdversion" not in ignored:
        for url in ext.get("endpoints") or []:
            try:
                ctx = ssl.create_default_context(cafile=ext.get("caFile") or None)
                if ext.get("certFile"):
                    ctx.load_cert_chain(ext["certFile"], ext.get("keyFile"))
                with urllib.request.urlopen(f"{url.rstrip('/')}/version", timeout=10, context=ctx) as resp:
                    json.loads(resp.read())
            except (OSError, ValueError, ssl.SSLError) as exc:
                errors.append(f'[ERROR ExternalEtcdVersion]: Get "{url}/version": {exc}')
    if errors:
        raise Failure(
            "[preflight] Some fatal errors occurred:\n\t" + "\n\t".join(errors) + "\n[preflight] If you "
            "know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`"
        )


def cmd_init(args: list[str], by_kind: dict[str, dict[str, Any]]) -> None:
    if args[:2] == ["phase", "upload-certs"]:
        return cmd_upload_certs(args)
    if args and args[0] == "phase":
        raise Failure(f"init phase {' '.join(args[1:2])}: not implemented by the kubeadm stand-in")
    init = by_kind.get("InitConfiguration") or {"nodeRegistration": {}}
    cluster = by_kind.get("ClusterConfiguration") or {}
    version = str(cluster.get("kubernetesVersion") or VERSION).lstrip("v")
    preflight(
        args,
        ["/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf"],
    )
    check_external_etcd(args, cluster)
    set_validity(cluster)
    name = node_name(init)
    endpoint = init.get("localAPIEndpoint") or {}
    advertise, port = str(endpoint.get("advertiseAddress") or ""), int(endpoint.get("bindPort") or 6443)
    cp_endpoint = str(cluster.get("controlPlaneEndpoint") or f"{advertise or '127.0.0.1'}:{port}")
    if ":" not in cp_endpoint.rsplit("]", 1)[-1]:
        cp_endpoint += f":{port}"
    server = f"https://{cp_endpoint}"
    algorithm = cluster.get("encryptionAlgorithm", "RSA-2048")
    pki = p(cluster.get("certificatesDir") or "/etc/kubernetes/pki")
    pki.mkdir(parents=True, exist_ok=True)
    log(f"[init] Using Kubernetes version: v{version}")
    new_ca(pki, "ca", "kubernetes", algorithm)
    new_ca(pki, "front-proxy-ca", "front-proxy-ca", algorithm)
    if not (pki / "sa.key").exists():
        new_key(pki / "sa.key", "RSA-2048")
        (pki / "sa.pub").write_bytes(openssl("pkey", "-in", str(pki / "sa.key"), "-pubout"))
    log("[certs] Generated ca, apiserver, apiserver-kubelet-client, front-proxy-ca, front-proxy-client and sa keys")
    cluster_name = cluster.get("clusterName", "kubernetes")
    client_kubeconfig(
        pki,
        "/etc/kubernetes/admin.conf",
        server,
        "kubernetes-admin",
        "/O=kubeadm:cluster-admins/CN=kubernetes-admin",
        cluster_name,
    )
    client_kubeconfig(
        pki,
        "/etc/kubernetes/super-admin.conf",
        server,
        "kubernetes-super-admin",
        "/O=system:masters/CN=kubernetes-super-admin",
        cluster_name,
    )
    client_kubeconfig(
        pki,
        "/etc/kubernetes/kubelet.conf",
        server,
        f"system:node:{name}",
        f"/O=system:nodes/CN=system:node:{name}",
        cluster_name,
    )
    log("[kubeconfig] Wrote admin.conf, super-admin.conf, kubelet.conf, controller-manager.conf, scheduler.conf")
    registration = init.get("nodeRegistration") or {}
    kubelet_yaml = kubelet_config_yaml(by_kind.get("KubeletConfiguration"), cluster)
    write_kubelet_files(registration, kubelet_yaml, cluster.get("imageRepository") or "registry.k8s.io")
    control_plane_files(pki, cluster, advertise, port, name, version)
    write("/etc/smcp-standin/cluster-version", version + "\n")
    start_kubelet()
    log("[kubelet-start] Starting the kubelet")
    api = Api.from_kubeconfig("/etc/kubernetes/admin.conf")
    stored = dict(
        cluster,
        apiVersion=KUBEADM_API,
        kind="ClusterConfiguration",
        kubernetesVersion=f"v{version}",
        controlPlaneEndpoint=cp_endpoint,
    )
    cm = "/api/v1/namespaces/kube-system/configmaps"
    api.ensure(
        cm,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": yaml.safe_dump(stored, sort_keys=False)},
        },
    )
    api.ensure(
        cm,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
            "data": {"kubelet": kubelet_yaml},
        },
    )
    log('[upload-config] Stored the configuration in ConfigMaps "kubeadm-config" and "kubelet-config"')
    mark_control_plane(api, name, registration)
    tokens = [t["token"] for t in init.get("bootstrapTokens") or [] if t.get("token")] or [new_token()]
    for token in tokens:
        code, out = api.call("POST", "/api/v1/namespaces/kube-system/secrets", token_secret(token))
        if code not in (201, 409):
            raise Failure(f"unable to create the bootstrap token: {code} {out}")
    ca_pem = (pki / "ca.crt").read_bytes()
    api.ensure(
        "/api/v1/namespaces/kube-public/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": kubeconfig(server, ca_pem, "", cluster="")},
        },
    )
    log('[bootstrap-token] Creating the "cluster-info" ConfigMap in the "kube-public" namespace')
    addons(api, cluster, version, args)
    if "--upload-certs" in args:
        key = flag(args, "--certificate-key") or init.get("certificateKey") or secrets.token_hex(32)
        upload_certs(api, key)
    log("\nYour Kubernetes control-plane has initialized successfully!\n")
    log(f"  kubeadm join {cp_endpoint} --token <redacted> --discovery-token-ca-cert-hash {ca_hash(ca_pem)}")


def addons(api: Api, cluster: dict[str, Any], version: str, args: list[str]) -> None:
    """CoreDNS Deployment + Service and the kube-proxy DaemonSet, as kubeadm's addon phase creates them."""
    skip = ",".join(a.split("=", 1)[1] for a in args if a.startswith("--skip-phases="))
    repo = cluster.get("imageRepository") or "registry.k8s.io"
    net = cluster.get("networking") or {}
    labels = {"k8s-app": "kube-dns"}
    if not (cluster.get("dns") or {}).get("disabled") and "addon/coredns" not in skip:
        api.ensure(
            "/apis/apps/v1/namespaces/kube-system/deployments",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "coredns", "image": f"{repo}/coredns/coredns:v1.12.1"}]},
                    },
                },
            },
        )
        service_ip = str(ipaddress.ip_network(net.get("serviceSubnet", "10.96.0.0/12"))[10])
        api.ensure(
            "/api/v1/namespaces/kube-system/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
                "spec": {
                    "clusterIP": service_ip,
                    "selector": labels,
                    "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
                },
            },
        )
        log("[addons] Applied essential addon: CoreDNS")
    if not (cluster.get("proxy") or {}).get("disabled") and "addon/kube-proxy" not in skip:
        proxy_labels = {"k8s-app": "kube-proxy"}
        api.ensure(
            "/apis/apps/v1/namespaces/kube-system/daemonsets",
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": proxy_labels},
                "spec": {
                    "selector": {"matchLabels": proxy_labels},
                    "template": {
                        "metadata": {"labels": proxy_labels},
                        "spec": {"containers": [{"name": "kube-proxy", "image": f"{repo}/kube-proxy:v{version}"}]},
                    },
                },
            },
        )
        log("[addons] Applied essential addon: kube-proxy")


def discover(bt: dict[str, Any]) -> tuple[str, bytes]:
    """Token discovery: cluster-info over unverified TLS, pinned by caCertHashes; then the token is checked."""
    endpoint = str(bt["apiServerEndpoint"])
    insecure = Api(f"https://{endpoint}", None, verify=False)
    info = insecure.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
    if not info:
        raise Failure(f'[discovery] unable to fetch the "cluster-info" ConfigMap from https://{endpoint}')
    cfg = yaml.safe_load(info["data"]["kubeconfig"])
    cluster = cfg["clusters"][0]["cluster"]
    ca_pem = base64.b64decode(cluster["certificate-authority-data"])
    hashes = bt.get("caCertHashes") or []
    actual = ca_hash(ca_pem)
    if hashes and actual not in hashes:
        raise Failure(
            f'cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "{actual}" are pinned'
        )
    api = Api(f"https://{endpoint}", ca_pem)
    tid, tsecret = str(bt["token"]).split(".")
    secret = api.get(f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{tid}")
    data = {k: base64.b64decode(v).decode() for k, v in ((secret or {}).get("data") or {}).items()}
    if data.get("token-secret") != tsecret:
        raise Failure(
            f'[discovery] the bootstrap token "{tid}.<redacted>" is not valid: no Secret '
            f'"bootstrap-token-{tid}" with that secret in kube-system'
        )
    expires = data.get("expiration")
    if expires and datetime.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    ) < datetime.datetime.now(tz=datetime.UTC):
        raise Failure(f'[discovery] the bootstrap token "{tid}" has expired')
    return str(cluster["server"]), ca_pem


def cmd_join(args: list[str], by_kind: dict[str, dict[str, Any]]) -> None:
    join = by_kind.get("JoinConfiguration")
    if not join:
        raise Failure("join needs a JoinConfiguration in --config")
    preflight(args, ["/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt"])
    name = node_name(join)
    discovery = join.get("discovery") or {}
    if discovery.get("bootstrapToken"):
        server, ca_pem = discover(discovery["bootstrapToken"])
    else:
        cfg = yaml.safe_load(Path(discovery["file"]["kubeConfigPath"]).read_text(encoding="utf-8"))
        cluster_entry = cfg["clusters"][0]["cluster"]
        server, ca_pem = cluster_entry["server"], base64.b64decode(cluster_entry["certificate-authority-data"])
    api = Api(server, ca_pem)
    stored = api.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    if not stored:
        raise Failure(
            'unable to fetch the kubeadm-config ConfigMap: was "kubeadm init" run on the first control plane?'
        )
    cluster = yaml.safe_load(stored["data"]["ClusterConfiguration"])
    set_validity(cluster)
    version = str(cluster.get("kubernetesVersion") or VERSION).lstrip("v")
    pki = p("/etc/kubernetes/pki")
    pki.mkdir(parents=True, exist_ok=True)
    registration = join.get("nodeRegistration") or {}
    cp = join.get("controlPlane")
    log(f"[preflight] Running pre-flight checks against {server}")
    if cp is not None:
        if not cluster.get("controlPlaneEndpoint"):
            raise Failure(
                "unable to add a new control plane instance to a cluster that doesn't have a stable "
                "controlPlaneEndpoint address"
            )
        key = (cp or {}).get("certificateKey") or flag(args, "--certificate-key")
        if not key:
            raise Failure(
                "joining a control plane needs controlPlane.certificateKey (the stand-in has no other way "
                "to get the shared certificates)"
            )
        secret = api.get("/api/v1/namespaces/kube-system/secrets/kubeadm-certs")
        if not secret:
            raise Failure(
                'error downloading the secret: secrets "kubeadm-certs" not found (run '
                '"kubeadm init phase upload-certs --upload-certs" on a control plane)'
            )
        data = secret.get("data") or {}
        if (
            base64.b64decode(data.get("certificate-key-sha256", "")).decode()
            != hashlib.sha256(str(key).encode()).hexdigest()
        ):
            raise Failure(
                "error downloading certs: error decrypting certificate data: cipher: message "
                "authentication failed (wrong certificate key)"
            )
        etcd_paths = {entry: external_etcd(cluster).get(field) for field, entry in EXTERNAL_ETCD.items()}
        for entry, raw in data.items():
            if entry in etcd_paths:
                if etcd_paths[entry] and not p(etcd_paths[entry]).exists():
                    write(etcd_paths[entry], base64.b64decode(raw), 0o600 if entry.endswith(".key") else 0o644)
            elif entry != "certificate-key-sha256":
                target = pki / entry
                target.write_bytes(base64.b64decode(raw))
                target.chmod(0o600 if entry.endswith(".key") else 0o644)
        log("[download-certs] Downloaded the certificates from Secret kubeadm-certs")
        endpoint = cp.get("localAPIEndpoint") or {}
        advertise, port = str(endpoint.get("advertiseAddress") or ""), int(endpoint.get("bindPort") or 6443)
        control_plane_files(pki, cluster, advertise, port, name, version)
        client_kubeconfig(
            pki,
            "/etc/kubernetes/admin.conf",
            server,
            "kubernetes-admin",
            "/O=kubeadm:cluster-admins/CN=kubernetes-admin",
            cluster.get("clusterName", "kubernetes"),
        )
        client_kubeconfig(
            pki,
            "/etc/kubernetes/kubelet.conf",
            server,
            f"system:node:{name}",
            f"/O=system:nodes/CN=system:node:{name}",
            cluster.get("clusterName", "kubernetes"),
        )
    else:
        write("/etc/kubernetes/pki/ca.crt", ca_pem)
        # The real kubelet gets its client certificate by TLS bootstrap (a CSR signed by the controller manager).
        # The stand-in makes a self-signed one: the kube-apiserver stand-in does not check client certificates.
        kdir = p("/var/lib/kubelet/pki")
        kdir.mkdir(parents=True, exist_ok=True)
        current = kdir / "kubelet-client-current.pem"
        with tempfile.TemporaryDirectory() as tmp:
            key_path = Path(tmp) / "k.key"
            new_key(key_path)
            cert = openssl(
                "req",
                "-x509",
                "-new",
                "-key",
                str(key_path),
                "-days",
                "365",
                "-subj",
                f"/O=system:nodes/CN=system:node:{name}",
            )
            current.write_bytes(cert + key_path.read_bytes())
            current.chmod(0o600)
        write(
            "/etc/kubernetes/kubelet.conf",
            kubeconfig(
                server,
                ca_pem,
                "default-auth",
                cert_path="/var/lib/kubelet/pki/kubelet-client-current.pem",
                key_path="/var/lib/kubelet/pki/kubelet-client-current.pem",
                cluster="default-cluster",
            ),
            0o600,
        )
    kubelet_cm = api.get("/api/v1/namespaces/kube-system/configmaps/kubelet-config")
    kubelet_yaml = (kubelet_cm or {}).get("data", {}).get("kubelet") or kubelet_config_yaml(None, cluster)
    write_kubelet_files(registration, kubelet_yaml, cluster.get("imageRepository") or "registry.k8s.io")
    write("/etc/smcp-standin/cluster-version", version + "\n")
    start_kubelet()
    log("[kubelet-start] Starting the kubelet")
    if cp is not None:
        mark_control_plane(Api.from_kubeconfig("/etc/kubernetes/admin.conf"), name, registration)
    elif systemd() and not wait_for_node(api, name, 120):
        raise Failure(f'[kubelet-start] the Node "{name}" was not registered by the kubelet within 120s')
    log("\nThis node has joined the cluster.")


def cmd_upload_certs(args: list[str]) -> None:
    if "--upload-certs" not in args:
        raise Failure("init phase upload-certs needs --upload-certs")
    key = flag(args, "--certificate-key") or secrets.token_hex(32)
    if not p("/etc/kubernetes/admin.conf").exists():
        raise Failure("/etc/kubernetes/admin.conf not found: upload-certs runs on a control plane")
    upload_certs(Api.from_kubeconfig("/etc/kubernetes/admin.conf"), key)


def admin_api() -> Api:
    for conf in ("/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"):
        if p(conf).exists():
            return Api.from_kubeconfig(conf)
    raise Failure("/etc/kubernetes/admin.conf not found: this command runs on a control plane")


def cmd_token(args: list[str]) -> None:
    api = admin_api()
    if args and args[0] == "create":
        positional = [a for a in args[1:] if not a.startswith("-") and TOKEN_RE.match(a)]
        token = positional[0] if positional else new_token()
        ttl = flag(args, "--ttl", "24h") or "24h"
        m = re.fullmatch(r"(\d+)([hms]?)", ttl)
        seconds = int(m.group(1)) * {"h": 3600, "m": 60, "s": 1, "": 1}[m.group(2)] if m else 86400
        code, out = api.call("POST", "/api/v1/namespaces/kube-system/secrets", token_secret(token, seconds or 10**9))
        if code >= 300:
            raise Failure(f"unable to create the token: {code} {out}")
        if "--print-join-command" in args:
            cfg = yaml.safe_load(p("/etc/kubernetes/admin.conf").read_text(encoding="utf-8"))
            cluster = cfg["clusters"][0]["cluster"]
            h = ca_hash(base64.b64decode(cluster["certificate-authority-data"]))
            log(
                f"kubeadm join {cluster['server'].removeprefix('https://')} --token {token} "
                f"--discovery-token-ca-cert-hash {h}"
            )
        else:
            log(token)
    elif args and args[0] == "list":
        lst = api.get("/api/v1/namespaces/kube-system/secrets") or {"items": []}
        log("TOKEN                     TTL         EXPIRES                USAGES                   DESCRIPTION")
        for s in lst["items"]:
            if s.get("type") == "bootstrap.kubernetes.io/token":
                d = {k: base64.b64decode(v).decode() for k, v in s["data"].items()}
                log(f"{d['token-id']}.<redacted>   -   {d.get('expiration', '<forever>')}   authentication,signing")
    elif args and args[0] == "delete":
        for tid in args[1:]:
            api.call("DELETE", f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{tid.split('.')[0]}")
            log(f'bootstrap token "{tid.split(".")[0]}" deleted')
    else:
        raise Failure("token: use create, list or delete")


def cluster_version(api: Api) -> tuple[dict[str, Any], str]:
    stored = api.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    if not stored:
        raise Failure("unable to fetch the kubeadm-config ConfigMap")
    cluster = yaml.safe_load(stored["data"]["ClusterConfiguration"])
    return cluster, str(cluster.get("kubernetesVersion", "")).lstrip("v")


def set_local_version(version: str) -> None:
    """The control plane on this host now runs `version`: manifests' images and the apiserver stand-in."""
    write("/etc/smcp-standin/cluster-version", version + "\n")
    cfg_path = p("/etc/smcp-standin/apiserver.json")
    if cfg_path.exists():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["version"] = version
        cfg_path.write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
        systemctl("restart", APISERVER_UNIT)
    for manifest in p("/etc/kubernetes/manifests").glob("kube-*.yaml"):
        text = manifest.read_text(encoding="utf-8")
        manifest.write_text(re.sub(r"(image: \S+:)v[\d.]+", rf"\g<1>v{version}", text), encoding="utf-8")


def cmd_upgrade(args: list[str]) -> None:
    sub = args[0] if args else ""
    if sub == "node":
        if p("/etc/kubernetes/admin.conf").exists():
            _, version = cluster_version(admin_api())
            set_local_version(version)
            log(f"[upgrade] Upgraded the control plane instance on this node to v{version}")
        else:
            api = Api.from_kubeconfig("/etc/kubernetes/kubelet.conf")
            cm = api.get("/api/v1/namespaces/kube-system/configmaps/kubelet-config")
            if cm:
                write("/var/lib/kubelet/config.yaml", cm["data"]["kubelet"])
        log("[upgrade] The upgrade for this node was successfully completed!")
        return
    if sub not in ("plan", "apply"):
        raise Failure("upgrade: use plan, apply vX.Y.Z or node")
    api = admin_api()
    cluster, current = cluster_version(api)
    own = parse_version(VERSION)
    if sub == "plan":
        log(f"[upgrade/versions] Cluster version: v{current}\n[upgrade/versions] kubeadm version: v{VERSION}")
        log(f"Upgrade to the latest version in the v{own[0]}.{own[1]} series:\n\nCOMPONENT   NODE   CURRENT   TARGET")
        log(
            f"kube-apiserver   {hostname()}   v{current}   v{VERSION}\n\nYou can now apply the upgrade by executing "
            f"the following command:\n\n\tkubeadm upgrade apply v{VERSION}"
        )
        return
    target_text = next((a for a in args[1:] if not a.startswith("-")), "")
    if not target_text:
        raise Failure("upgrade apply needs the version to upgrade to (kubeadm upgrade apply vX.Y.Z)")
    target, cur = parse_version(target_text), parse_version(current)
    if "--yes" not in args and "-y" not in args and "--force" not in args:
        raise Failure("upgrade apply asks for confirmation: the stand-in has no terminal, pass --yes")
    if target > own:
        raise Failure(
            f'Specified version to upgrade to "{target_text}" is higher than the kubeadm version '
            f'"v{VERSION}". Upgrade kubeadm first using the tool you used to install kubeadm'
        )
    if target[:2] > (cur[0], cur[1] + 1):
        raise Failure(
            f'Specified version to upgrade to "{target_text}" is too high; kubeadm can upgrade only 1 '
            "minor version at a time"
        )
    if target[:2] < cur[:2]:
        raise Failure(
            f'Specified version to upgrade to "{target_text}" is an unsupported version: downgrading a '
            "minor version is not supported"
        )
    version = "{}.{}.{}".format(*target)
    stored = dict(cluster, kubernetesVersion=f"v{version}")
    api.ensure(
        "/api/v1/namespaces/kube-system/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": yaml.safe_dump(stored, sort_keys=False)},
        },
    )
    set_local_version(version)
    repo = cluster.get("imageRepository") or "registry.k8s.io"
    code, _ = api.call("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy")
    if code == 200:
        api.patch(
            "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy",
            {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "kube-proxy", "image": f"{repo}/kube-proxy:v{version}"}]}
                    }
                }
            },
        )
    log(f'[upgrade] SUCCESS! A control plane node of your cluster was upgraded to "v{version}".')


def cmd_reset(args: list[str]) -> None:
    if "-f" not in args and "--force" not in args:
        raise Failure("reset asks for confirmation: the stand-in has no terminal, pass -f")
    systemctl("disable", "--now", APISERVER_UNIT)
    systemctl("stop", "kubelet.service")
    for f in (
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/super-admin.conf",
        "/etc/kubernetes/kubelet.conf",
        "/etc/kubernetes/bootstrap-kubelet.conf",
        "/etc/kubernetes/controller-manager.conf",
        "/etc/kubernetes/scheduler.conf",
        "/etc/smcp-standin/apiserver.json",
        "/etc/smcp-standin/cluster-version",
        f"/etc/systemd/system/{APISERVER_UNIT}",
    ):
        p(f).unlink(missing_ok=True)
    for d in ("/etc/kubernetes/pki", "/etc/kubernetes/manifests", "/var/lib/kubelet/pki"):
        shutil.rmtree(p(d), ignore_errors=True)
    for f in ("/var/lib/kubelet/config.yaml", "/var/lib/kubelet/kubeadm-flags.env"):
        p(f).unlink(missing_ok=True)
    p("/etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    systemctl("daemon-reload")
    log(
        "[reset] Deleted contents of the etc directories: [/etc/kubernetes/manifests /var/lib/kubelet "
        "/etc/kubernetes/pki]\n[reset] Deleting files: [/etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf "
        "/etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/controller-manager.conf "
        "/etc/kubernetes/scheduler.conf]"
    )


CERTS = [  # (name in the table, file or kubeconfig, certificate authority)
    ("admin.conf", "/etc/kubernetes/admin.conf", "ca"),
    ("apiserver", "/etc/kubernetes/pki/apiserver.crt", "ca"),
    ("apiserver-kubelet-client", "/etc/kubernetes/pki/apiserver-kubelet-client.crt", "ca"),
    ("controller-manager.conf", "/etc/kubernetes/controller-manager.conf", "ca"),
    ("front-proxy-client", "/etc/kubernetes/pki/front-proxy-client.crt", "front-proxy-ca"),
    ("scheduler.conf", "/etc/kubernetes/scheduler.conf", "ca"),
    ("super-admin.conf", "/etc/kubernetes/super-admin.conf", "ca"),
]


def cert_pem(path: str) -> bytes | None:
    f = p(path)
    if not f.exists():
        return None
    if path.endswith(".conf"):
        cfg = yaml.safe_load(f.read_text(encoding="utf-8"))
        return base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"])
    return f.read_bytes()


def not_after(pem: bytes) -> datetime.datetime:
    out = openssl("x509", "-noout", "-enddate", stdin=pem).decode().strip().split("=", 1)[1]
    return datetime.datetime.strptime(out, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.UTC)


def cmd_certs(args: list[str]) -> None:
    now = datetime.datetime.now(tz=datetime.UTC)

    def row(name: str, pem: bytes, ca: str = "") -> str:
        end = not_after(pem)
        left = end - now
        residual = f"{left.days}d" if left.days > 0 else f"{max(int(left.total_seconds() // 3600), 0)}h"
        return f"{name:<25} {end.strftime('%b %d, %Y %H:%M UTC'):<25} {residual:<15} {ca:<23} no"

    if args[:1] == ["check-expiration"]:
        if not p("/etc/kubernetes/pki/ca.crt").exists():
            raise Failure("/etc/kubernetes/pki/ca.crt not found: this node has no certificates")
        log(
            f"{'CERTIFICATE':<25} {'EXPIRES':<25} {'RESIDUAL TIME':<15} {'CERTIFICATE AUTHORITY':<23} "
            "EXTERNALLY MANAGED"
        )
        for name, path, ca in CERTS:
            pem = cert_pem(path)
            if pem:
                log(row(name, pem, ca))
        log(f"\n{'CERTIFICATE AUTHORITY':<25} {'EXPIRES':<25} {'RESIDUAL TIME':<15} EXTERNALLY MANAGED")
        for ca in ("ca", "front-proxy-ca"):
            pem = cert_pem(f"/etc/kubernetes/pki/{ca}.crt")
            if pem:
                log(row(ca, pem)[:67] + " no")
        return
    if args[:2] == ["renew", "all"]:
        pki = p("/etc/kubernetes/pki")
        if not (pki / "ca.key").exists():
            raise Failure("/etc/kubernetes/pki/ca.key not found: renew runs on a control plane")
        try:  # kubeadm renews with the cluster's certificateValidityPeriod when it can read it
            code, stored = admin_api().call(
                "GET", "/api/v1/namespaces/kube-system/configmaps/kubeadm-config", deadline=10
            )
            if code == 200:
                set_validity(yaml.safe_load(stored["data"]["ClusterConfiguration"]) or {})
        except Failure as exc:
            print(f"W: could not read the cluster configuration, using defaults: {exc}", file=sys.stderr)
        for name, path, ca in CERTS:
            if not p(path).exists():
                continue
            if path.endswith(".conf"):
                cfg = yaml.safe_load(p(path).read_text(encoding="utf-8"))
                subject = openssl("x509", "-noout", "-subject", "-nameopt", "compat", stdin=cert_pem(path) or b"")
                client_kubeconfig(
                    pki,
                    path,
                    cfg["clusters"][0]["cluster"]["server"],
                    cfg["users"][0]["name"],
                    subject.decode().split("=", 1)[1].strip(),
                    cfg["clusters"][0]["name"],
                )
                log(f"[renew] certificate embedded in the kubeconfig file {name} renewed")
            else:
                crt = p(path)
                subject = openssl("x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "compat")
                sans = openssl("x509", "-in", str(crt), "-noout", "-ext", "subjectAltName").decode()
                san_list = (
                    [s.strip().replace("IP Address:", "IP:") for s in sans.splitlines()[1].split(",")]
                    if ("DNS:" in sans or "IP Address:" in sans)
                    else None
                )
                usage = "serverAuth" if name == "apiserver" else "clientAuth"
                sign(pki, ca, crt.with_suffix(".key"), crt, subject.decode().split("=", 1)[1].strip(), usage, san_list)
                log(f"[renew] certificate {name} renewed")
        log(
            "\nDone renewing certificates. You must restart the kube-apiserver, kube-controller-manager, "
            "kube-scheduler and etcd, so that they can use the new certificates."
        )
        return
    raise Failure("certs: use check-expiration or renew all")


def cmd_version(args: list[str]) -> None:
    major, minor, _ = parse_version(VERSION)
    out = flag(args, "-o") or flag(args, "--output") or ""
    info = {
        "major": str(major),
        "minor": str(minor),
        "gitVersion": f"v{VERSION}",
        "gitCommit": "standin",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
    if out == "short":
        log(f"v{VERSION}")
    elif out == "json":
        log(json.dumps({"clientVersion": info}, indent=2))
    elif out == "yaml":
        log(yaml.safe_dump({"clientVersion": info}, sort_keys=False))
    else:
        log(
            f'kubeadm version: &version.Info{{Major:"{major}", Minor:"{minor}", GitVersion:"v{VERSION}", '
            'GitCommit:"standin", GitTreeState:"clean", Platform:"linux/amd64"}'
        )


def cmd_config(args: list[str]) -> None:
    if args[:1] == ["validate"]:
        config_from_args(args)
        log("ok")
        return
    if args[:2] in (["images", "list"], ["images", "pull"]):
        _, by_kind = config_from_args(args, required=False)
        cluster = by_kind.get("ClusterConfiguration") or {}
        version = str(flag(args, "--kubernetes-version") or cluster.get("kubernetesVersion") or VERSION).lstrip("v")
        repo = cluster.get("imageRepository") or "registry.k8s.io"
        images = [
            f"{repo}/{c}:v{version}"
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
        ] + [f"{repo}/coredns/coredns:v1.12.1", f"{repo}/pause:3.10"]
        for image in images:
            log(image if args[1] == "list" else f"[config/images] Pulled {image} (stand-in: nothing was pulled)")
        return
    raise Failure("config: the stand-in implements validate and images list|pull")


def kubeadm(args: list[str]) -> int:
    if args[:1] == ["standin-apiserver"]:
        return apiserver(args[1:])
    config_text = None
    path = flag(args, "--config")
    if path:
        try:
            config_text = Path(path).read_text(encoding="utf-8")
        except OSError:
            config_text = None
    injected = injected_failure(args)
    record(["kubeadm", *args], config_text, injected)
    if injected:
        print(f"error: injected failure ({injected!r} in /etc/smcp-standin/fail)", file=sys.stderr, flush=True)
        return 1
    command, rest = (args[0], args[1:]) if args else ("", [])
    try:
        if command == "version":
            cmd_version(rest)
        elif command == "config":
            cmd_config(rest)
        elif command == "init":
            _, by_kind = config_from_args(rest) if not rest[:1] == ["phase"] else (None, {})
            cmd_init(rest, by_kind)
        elif command == "join":
            _, by_kind = config_from_args(rest)
            cmd_join(rest, by_kind)
        elif command == "token":
            cmd_token(rest)
        elif command == "upgrade":
            cmd_upgrade(rest)
        elif command == "reset":
            cmd_reset(rest)
        elif command == "certs":
            cmd_certs(rest)
        else:
            raise Failure(f"unknown command {command!r} for the kubeadm stand-in (see docs/testing.md)")
    except Failure as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


# --------------------------------------------------------------------------- kube-apiserver stand-in


def apiserver(args: list[str]) -> int:
    cfg = json.loads(Path(flag(args, "--config") or "/etc/smcp-standin/apiserver.json").read_text(encoding="utf-8"))
    upstream = cfg["upstream"].rstrip("/")
    host = hostname()

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *a: Any) -> None:
            return

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Smcp-Standin-Host", host)
            self.end_headers()
            self.wfile.write(body)

        def _proxy(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path in ("/readyz", "/livez", "/healthz"):
                return self._reply(200, b"ok")
            if path == "/version":
                version = json.loads(Path(args_config).read_text(encoding="utf-8")).get("version", VERSION)
                major, minor, _ = parse_version(version)
                return self._reply(
                    200,
                    json.dumps(
                        {
                            "major": str(major),
                            "minor": str(minor),
                            "gitVersion": f"v{version}",
                            "gitCommit": "standin",
                            "gitTreeState": "clean",
                            "buildDate": "2026-01-01T00:00:00Z",
                            "goVersion": "go1.24",
                            "compiler": "gc",
                            "platform": "linux/amd64",
                        }
                    ).encode(),
                    "application/json",
                )
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept", "user-agent")}
            headers["X-Smcp-Standin-Via"] = host
            req = urllib.request.Request(upstream + self.path, data=body, method=self.command, headers=headers)
            try:
                resp = urllib.request.urlopen(req, timeout=330)
            except urllib.error.HTTPError as exc:
                resp = exc
            except OSError as exc:
                return self._reply(503, f"kube-apiserver stand-in: upstream {upstream} unreachable: {exc}".encode())
            with resp:
                self.send_response(resp.status if hasattr(resp, "status") else resp.code)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
                self.send_header("X-Smcp-Standin-Host", host)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy

    args_config = flag(args, "--config") or "/etc/smcp-standin/apiserver.json"
    server = http.server.ThreadingHTTPServer((cfg.get("bind", "0.0.0.0"), int(cfg["port"])), Proxy)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"kube-apiserver stand-in on :{cfg['port']} -> {upstream}", flush=True)
    server.serve_forever()
    return 0


# --------------------------------------------------------------------------- kubelet stand-in


def kubelet(args: list[str]) -> int:
    if "--version" in args or args[:1] == ["version"]:
        log(f"Kubernetes v{VERSION}")
        return 0
    kubeconfig_path = flag(args, "--kubeconfig", "/etc/kubernetes/kubelet.conf") or "/etc/kubernetes/kubelet.conf"
    name = (flag(args, "--hostname-override") or hostname()).lower()
    node_ip = flag(args, "--node-ip") or ""
    labels = dict(
        kv.split("=", 1) if "=" in kv else (kv, "") for kv in (flag(args, "--node-labels") or "").split(",") if kv
    )
    config_path = flag(args, "--config", KUBELET_CONFIG) or KUBELET_CONFIG
    interval = float(os.environ.get("SMCP_STANDIN_HEARTBEAT", "10"))  # nodeStatusUpdateFrequency
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"kubelet stand-in v{VERSION} for node {name}", flush=True)
    registered = False
    while not stop.is_set():
        if not p(kubeconfig_path).exists():
            registered = False
            stop.wait(2)
            continue
        try:
            api = Api.from_kubeconfig(kubeconfig_path)
            if registered:
                run_cni_installers(api, name)
            problems = readiness_problems(kubeconfig_path, config_path)
            if not registered:
                registered = register_node(api, name, node_ip, labels, problems)
            if registered:
                heartbeat(api, name, node_ip, problems)
        except (Failure, OSError, ValueError, KeyError, yaml.YAMLError) as exc:
            print(f"kubelet stand-in: {exc}", file=sys.stderr, flush=True)
        stop.wait(interval)
    return 0


KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
CNI_CONF_DIR = "/etc/cni/net.d"
# The CNI DaemonSets whose pods write the node's network config (install-cni): namespace, DaemonSet, ConfigMap,
# its key holding the config, the file written. The stand-in runs no pods: its kubelet does their writing.
CNI_INSTALLERS = (
    ("kube-system", "calico-node", "calico-config", "cni_network_config", "10-calico.conflist"),
    ("kube-flannel", "kube-flannel-ds", "kube-flannel-cfg", "cni-conf.json", "10-flannel.conflist"),
)


def cni_configs() -> list[Path]:
    """The network configs the container runtime would load (valid JSON with a type or plugins)."""
    found = []
    conf_dir = p(CNI_CONF_DIR)
    for path in sorted(conf_dir.glob("*")) if conf_dir.is_dir() else []:
        if path.suffix not in (".conf", ".conflist", ".json"):
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and (doc.get("plugins") or doc.get("type")):
            found.append(path)
    return found


def run_cni_installers(api: Api, name: str) -> None:
    """What a CNI DaemonSet's install-cni container does on its node: write the network config from its ConfigMap.

    Only when the DaemonSet exists in the API (the cni role applied it) and the node has no network config yet.
    """
    if cni_configs():
        return
    for namespace, daemonset, configmap, key, filename in CNI_INSTALLERS:
        if api.get(f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{daemonset}") is None:
            continue
        data = (api.get(f"/api/v1/namespaces/{namespace}/configmaps/{configmap}") or {}).get("data") or {}
        text = data.get(key)
        if not text:
            continue
        mtu = str(data.get("veth_mtu") or "1450")
        text = (
            text.replace("__KUBERNETES_NODE_NAME__", name)
            .replace('"__CNI_MTU__"', mtu)
            .replace("__KUBECONFIG_FILEPATH__", f"{CNI_CONF_DIR}/calico-kubeconfig")
        )
        write(f"{CNI_CONF_DIR}/{filename}", text)
        print(f"kubelet stand-in: {daemonset} wrote {CNI_CONF_DIR}/{filename}", flush=True)
        return


def _has_certificate(pem: bytes | None) -> bool:
    return bool(pem) and b"-----BEGIN CERTIFICATE-----" in (pem or b"")


def readiness_problems(kubeconfig_path: str, config_path: str = KUBELET_CONFIG) -> list[str]:
    """Why a real kubelet would not report Ready here: its config, its certificates, the CNI config."""
    problems: list[str] = []
    config: Any = None
    try:
        config = yaml.safe_load(p(config_path).read_text(encoding="utf-8"))
    except OSError:
        problems.append(f"kubelet config {config_path} is missing")
    except yaml.YAMLError as exc:
        problems.append(f"kubelet config {config_path} is not YAML: {exc}")
    else:
        if not isinstance(config, dict) or config.get("kind") != "KubeletConfiguration":
            problems.append(f"kubelet config {config_path} is not a KubeletConfiguration")
            config = None
    x509 = ((config or {}).get("authentication") or {}).get("x509") or {}
    ca_file = str(x509.get("clientCAFile") or "/etc/kubernetes/pki/ca.crt")
    if not _has_certificate(p(ca_file).read_bytes() if p(ca_file).is_file() else None):
        problems.append(f"client CA certificate {ca_file} is missing")
    try:
        kubeconfig_doc = yaml.safe_load(p(kubeconfig_path).read_text(encoding="utf-8")) or {}
        user = (kubeconfig_doc.get("users") or [{}])[0].get("user") or {}
    except (OSError, yaml.YAMLError, AttributeError, IndexError):
        user = {}
    if user.get("client-certificate-data"):
        cert = base64.b64decode(user["client-certificate-data"])
    elif user.get("client-certificate") and p(user["client-certificate"]).is_file():
        cert = p(user["client-certificate"]).read_bytes()
    else:
        cert = None
    if not _has_certificate(cert):
        problems.append(f"the kubelet client certificate of {kubeconfig_path} is missing")
    if not cni_configs():
        problems.append(
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
            f"message:Network plugin returns error: cni plugin not initialized (no network config in {CNI_CONF_DIR})"
        )
    return problems


def node_status(node_ip: str, problems: list[str] | None = None) -> dict[str, Any]:
    now = datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    runtime = (
        subprocess.run(["containerd", "--version"], capture_output=True, text=True, check=False)
        if shutil.which("containerd")
        else None
    )
    runtime_version = runtime.stdout.split()[2] if runtime and len(runtime.stdout.split()) > 2 else "unknown"
    problems = list(problems or [])
    if p("/etc/smcp-standin/kubelet-not-ready").exists():  # failure injection for tests
        problems.insert(0, "injected: /etc/smcp-standin/kubelet-not-ready exists")
    not_ready = bool(problems)
    addresses = [{"type": "Hostname", "address": hostname()}]
    if node_ip:
        addresses.insert(0, {"type": "InternalIP", "address": node_ip})
    return {
        "conditions": [
            {
                "type": t,
                "status": "False",
                "reason": f"Kubelet Has Sufficient {t}",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
        ]
        + [
            {
                "type": "Ready",
                "status": "False" if not_ready else "True",
                "reason": "KubeletNotReady" if not_ready else "KubeletReady",
                "message": "; ".join(problems) if not_ready else "kubelet stand-in is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ],
        "addresses": addresses,
        "capacity": {"cpu": str(os.cpu_count() or 1), "memory": "4Gi", "pods": "110"},
        "allocatable": {"cpu": str(os.cpu_count() or 1), "memory": "4Gi", "pods": "110"},
        "nodeInfo": {
            "kubeletVersion": f"v{VERSION}",
            "kubeProxyVersion": f"v{VERSION}",
            "containerRuntimeVersion": f"containerd://{runtime_version}",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "kernelVersion": os.uname().release,
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


def register_node(api: Api, name: str, node_ip: str, labels: dict[str, str], problems: list[str]) -> bool:
    base_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        **labels,
    }
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": base_labels},
        "spec": {},
        "status": node_status(node_ip, problems),
    }
    code, out = api.call("POST", "/api/v1/nodes", node, deadline=10)
    if code == 409:
        api.patch(f"/api/v1/nodes/{name}", {"metadata": {"labels": base_labels}})
    elif code >= 300:
        print(f"kubelet stand-in: registering node {name} failed: {code} {out}", file=sys.stderr, flush=True)
        return False
    print(f"kubelet stand-in: node {name} registered", flush=True)
    return True


def heartbeat(api: Api, name: str, node_ip: str, problems: list[str]) -> None:
    code, out = api.call(
        "PATCH",
        f"/api/v1/nodes/{name}/status",
        {"status": node_status(node_ip, problems)},
        "application/strategic-merge-patch+json",
        deadline=10,
    )
    if code >= 300:
        print(f"kubelet stand-in: status update of node {name} failed: {code} {out}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- kubectl / crictl


def kubectl(args: list[str]) -> int:
    record(["kubectl", *args], None)
    if args[:1] == ["version"] and "--client" in args:
        log(f"Client Version: v{VERSION}\nKustomize Version: v5.7.1")
        return 0
    print(
        "error: kubectl stand-in: only `kubectl version --client` is implemented; roles talk to the API from the "
        "controller (K8S_CONTRACT section 4)",
        file=sys.stderr,
    )
    return 1


def crictl(args: list[str]) -> int:
    record(["crictl", *args], None)
    if "--version" in args or args[:1] == ["version"]:
        log(f"crictl version v{VERSION}")
        return 0
    if args[:1] == ["images"]:
        res = subprocess.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"], capture_output=True, text=True, check=False)
        refs = [r for r in res.stdout.split() if not r.startswith("sha256:")]
        if "-q" in args or "--quiet" in args:
            log("\n".join(refs))
        else:
            log(f"{'IMAGE':<60} {'TAG':<20}")
            for ref in refs:
                image, _, tag = ref.rpartition(":")
                log(f"{image:<60} {tag:<20}")
        return res.returncode
    print("error: crictl stand-in: only version and images are implemented (use ctr for containerd)", file=sys.stderr)
    return 1


def main() -> int:
    name = Path(sys.argv[0]).name
    args = sys.argv[1:]
    if (
        name in ("standin.py", "__main__.py", "standin")
        and args
        and args[0] in ("kubeadm", "kubelet", "kubectl", "crictl")
    ):
        name, args = args[0], args[1:]
    if name.startswith("kubelet"):
        return kubelet(args)
    if name.startswith("kubectl"):
        return kubectl(args)
    if name.startswith("crictl"):
        return crictl(args)
    return kubeadm(args)


if __name__ == "__main__":
    sys.exit(main())
