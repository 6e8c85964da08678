"""Role kube_artifacts on 2 real sandbox hosts, from an offline bundle built by the artifacts playbook.

The bundle is built here from stand-in files (shell scripts, small tarballs, tiny OCI images)
served by a local HTTP mirror, with ``kube_artifacts_checksums`` for their sums: the real
upstream files cannot be downloaded on this machine. Host 1 installs from the bundle directory
on the controller, host 2 from the bundle served over HTTP. Needs root and podman; run with
``pytest -m sandbox tests/integration/test_kube_artifacts_live.py``.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import shlex
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
PLAYBOOK = str(ROOT / ".venv" / "bin" / "ansible-playbook")
SANDBOX = os.environ.get("SMCP_ART_SANDBOX", "art")
VERSION = "1.35.0"
IMAGES = {
    "kube-apiserver": f"registry.k8s.io/kube-apiserver:v{VERSION}",
    "kube-controller-manager": f"registry.k8s.io/kube-controller-manager:v{VERSION}",
    "kube-scheduler": f"registry.k8s.io/kube-scheduler:v{VERSION}",
    "kube-proxy": f"registry.k8s.io/kube-proxy:v{VERSION}",
    "coredns": "registry.k8s.io/coredns/coredns:v1.13.1",
    "pause": "registry.k8s.io/pause:3.10.1",
    "etcd": "registry.k8s.io/etcd:3.6.6-0",
}


def _run(*cmd: str, check: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, env=env, timeout=900)


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_NOCOLOR="1",
    )


def _tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _oci_archive(ref: str) -> bytes:
    """A minimal single-layer OCI image archive naming ``ref`` (org.opencontainers.image.ref.name)."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        data = f"#!/bin/sh\necho {ref}\n".encode()
        info = tarfile.TarInfo("stand-in")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(layer_tar.getvalue()).hexdigest()
    layer = blob(layer_tar.getvalue())
    config = blob(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/stand-in"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        ).encode()
    )
    manifest = blob(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
            }
        ).encode()
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **manifest,
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode()}
        files.update({f"blobs/sha256/{d}": b for d, b in blobs.items()})
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class _Server:
    """A quiet HTTP server for one directory, on ``host``."""

    def __init__(self, directory: Path, host: str) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer((host, 0), handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def box():
    up = _run(SMCPCTL, "sandbox", "up", "--hosts", "2", "--name", SANDBOX, "--json", check=True)
    info = json.loads(up.stdout)
    try:
        yield info
    finally:
        if not os.environ.get("SMCP_ART_KEEP"):  # keep the hosts for debugging
            _run(SMCPCTL, "sandbox", "down", "--name", SANDBOX)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, box):
    """Stand-in files on a mirror, a bundle built from them by the artifacts playbook, served over HTTP."""
    work = tmp_path_factory.mktemp("kube-artifacts")
    mirror = work / "mirror"
    mirror.mkdir()
    files = {
        name: f"#!/bin/sh\necho '{name} stand-in v{VERSION}'\n".encode() for name in ("kubeadm", "kubelet", "kubectl")
    }
    files["runc"] = b"#!/bin/sh\necho runc stand-in\n"
    files["crictl.tar.gz"] = _tar_gz({"crictl": b"#!/bin/sh\necho crictl stand-in\n"})
    files["cni.tgz"] = _tar_gz(
        {f"./{p}": f"#!/bin/sh\necho {p}\n".encode() for p in ("bridge", "host-local", "loopback")}
    )
    files["containerd.tar.gz"] = _tar_gz({"bin/containerd": b"#!/bin/sh\n"})
    files["etcd.tar.gz"] = _tar_gz({"etcd/etcd": b"#!/bin/sh\n"})
    for name, data in files.items():
        (mirror / name).write_bytes(data)
    names = {
        "kubeadm": "kubeadm",
        "kubelet": "kubelet",
        "kubectl": "kubectl",
        "runc": "runc",
        "crictl": "crictl.tar.gz",
        "cni_plugins": "cni.tgz",
        "containerd": "containerd.tar.gz",
        "etcd": "etcd.tar.gz",
    }
    checksums = {key: hashlib.sha256(files[name]).hexdigest() for key, name in names.items()}
    archives = {}
    for key, ref in IMAGES.items():
        path = work / f"{key}.oci.tar"
        path.write_bytes(_oci_archive(ref))
        archives[ref] = str(path)
    server = _Server(mirror, "127.0.0.1")
    out = work / "bundle" / f"{VERSION}-amd64"
    extra = {
        "artifacts_bundle_out": str(out),
        "artifacts_version": VERSION,
        "artifacts_urls": {key: f"{server.url}/{name}" for key, name in names.items()},
        "artifacts_checksums": checksums,
        "artifacts_image_archives": archives,
    }
    (work / "build.json").write_text(json.dumps(extra))
    try:
        build = _run(PLAYBOOK, str(ROOT / "playbooks" / "artifacts.yml"), "-e", f"@{work / 'build.json'}", env=_env())
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
        again = _run(PLAYBOOK, str(ROOT / "playbooks" / "artifacts.yml"), "-e", f"@{work / 'build.json'}", env=_env())
        assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    finally:
        server.close()
    # Hosts reach the controller at their network gateway.
    served = _Server(out.parent, box["gateway"])
    try:
        yield {"dir": out, "url": f"{served.url}/{out.name}", "checksums": checksums, "work": work}
    finally:
        served.close()


def _site(work: Path, name: str, host_vars: dict[str, dict[str, object]], common: dict[str, object]) -> Path:
    play = [
        {
            "name": "containerd and the Kubernetes artifacts",
            "hosts": "all",
            "become": True,
            "gather_facts": False,
            "vars": common,
            "roles": [{"role": "smcp.platform.containerd"}, {"role": "smcp.platform.kube_artifacts"}],
        }
    ]
    path = work / f"{name}.yml"
    path.write_text(json.dumps(play))
    for host, values in host_vars.items():
        (work / "host_vars").mkdir(exist_ok=True)
        (work / "host_vars" / f"{host}.yml").write_text(json.dumps(values))
    return path


def _play(box, playbook: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook next to its host_vars/ (read as playbook-adjacent host variables)."""
    return _run(PLAYBOOK, "-i", box["inventory"], str(playbook), *args, env=_env())


def _sh(box, host: str, command: str) -> str:
    """Run ``command`` as root on a sandbox host; its stdout (add 2>&1 for errors)."""
    address = next(h["ip"] for h in box["hosts"] if h["name"] == host)
    res = _run(
        "ssh",
        "-i",
        box["key"],
        "-o",
        f"UserKnownHostsFile={box['known_hosts']}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlPath=none",
        f"{box['user']}@{address}",
        "sudo",
        "sh",
        "-c",
        shlex.quote(command),
    )
    return res.stdout


def _recap(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "ok=" in line and "changed=" in line]


@pytest.fixture(scope="module")
def installed(box, bundle):
    work: Path = bundle["work"]
    one, two = (h["name"] for h in box["hosts"])
    site = _site(
        work,
        "site",
        {one: {"smcp_bundle_dir": str(bundle["dir"])}, two: {"smcp_bundle_url": bundle["url"]}},
        {"kube_artifacts_checksums": bundle["checksums"]},
    )
    first = _play(box, site)
    assert first.returncode == 0, "\n".join(
        line for line in first.stdout.splitlines() if "fatal" in line or "failed:" in line or "msg" in line
    )
    return {"site": site, "first": first, "hosts": (one, two)}


def test_binaries_cni_units_marker_and_images_are_installed(box, installed):
    for host in installed["hosts"]:
        out = _sh(
            box,
            host,
            "/usr/local/bin/kubeadm; /usr/local/bin/crictl; ls /opt/cni/bin; systemctl is-enabled kubelet;"
            " grep KUBELET_KUBECONFIG_ARGS= /etc/systemd/system/kubelet.service.d/10-kubeadm.conf;"
            " grep ExecStart /etc/systemd/system/kubelet.service",
        ).splitlines()
        assert f"kubeadm stand-in v{VERSION}" in out and "crictl stand-in" in out, out
        assert {"bridge", "host-local", "loopback"} <= set(out) and "enabled" in out, out
        assert "ExecStart=/usr/local/bin/kubelet" in out, out
        assert _sh(box, host, "cat /etc/smcp/kubernetes-version") == VERSION
        images = set(_sh(box, host, "ctr -n k8s.io images ls -q").split())
        assert set(IMAGES.values()) <= images, (host, images)


def test_second_run_changes_nothing(box, installed):
    again = _play(box, installed["site"])
    assert again.returncode == 0, again.stdout[-4000:]
    recap = _recap(again.stdout)
    assert len(recap) == 2 and all("changed=0" in line and "failed=0" in line for line in recap), recap


def test_check_mode_reports_a_missing_binary_and_changes_nothing(box, installed):
    one = installed["hosts"][0]
    _sh(box, one, "rm -f /usr/local/bin/kubectl")
    check = _play(box, installed["site"], "--check", "--limit", one)
    assert check.returncode == 0, check.stdout[-4000:]
    assert "Would install: kubectl" in check.stdout, check.stdout[-4000:]
    assert "No such file" in _sh(box, one, "ls /usr/local/bin/kubectl 2>&1")
    repair = _play(box, installed["site"], "--limit", one)
    assert repair.returncode == 0 and "kubectl stand-in" in _sh(box, one, "/usr/local/bin/kubectl")


def test_manifest_sum_disagreeing_fails_before_any_change(box, installed, bundle):
    one = installed["hosts"][0]
    _sh(box, one, "rm -f /usr/local/bin/kubectl")
    wrong = dict(bundle["checksums"], kubectl="1" * 64)
    site = _site(bundle["work"], "wrong-sum", {}, {"kube_artifacts_checksums": wrong})
    run = _play(box, site, "--limit", one)
    assert run.returncode != 0
    assert "bundle manifest entry of" in run.stdout and "1" * 64 in run.stdout
    assert f"{bundle['dir']}/bin/kubectl" in run.stdout and bundle["checksums"]["kubectl"] in run.stdout
    assert "No such file" in _sh(box, one, "ls /usr/local/bin/kubectl 2>&1")


def test_tampered_file_is_deleted_and_named(box, installed, bundle):
    two = installed["hosts"][1]
    _sh(box, two, "rm -f /usr/local/bin/kubectl /var/cache/smcp/kube-artifacts/*/kubectl")
    target = bundle["dir"] / "bin" / "kubectl"
    original = target.read_bytes()
    target.write_bytes(b"#!/bin/sh\necho tampered\n")
    try:
        run = _play(box, installed["site"], "--limit", two)
    finally:
        target.write_bytes(original)
    assert run.returncode != 0
    actual = hashlib.sha256(b"#!/bin/sh\necho tampered\n").hexdigest()
    assert f"{bundle['url']}/bin/kubectl" in run.stdout and actual in run.stdout
    assert bundle["checksums"]["kubectl"] in run.stdout
    assert "No such file" in _sh(box, two, "ls /usr/local/bin/kubectl /var/cache/smcp/kube-artifacts/*/kubectl 2>&1")
    repair = _play(box, installed["site"], "--limit", two)
    assert repair.returncode == 0 and "kubectl stand-in" in _sh(box, two, "/usr/local/bin/kubectl")


def test_unknown_version_fails_before_any_change(box, installed, bundle):
    site = _site(bundle["work"], "unknown", {}, {"kube_artifacts_version": "1.99.0"})
    run = _play(box, site)
    assert run.returncode != 0
    assert "1.99.0 is not in the versions table" in run.stdout and "1.35.0" in run.stdout
    assert all("changed=0" in line for line in _recap(run.stdout)), run.stdout[-3000:]
    for host in installed["hosts"]:
        assert VERSION in _sh(box, host, "cat /etc/smcp/kubernetes-version")


@pytest.fixture(scope="module", autouse=True)
def _cleanup_work(tmp_path_factory):
    yield
    shutil.rmtree(tmp_path_factory.getbasetemp() / "kube-artifacts0", ignore_errors=True)
