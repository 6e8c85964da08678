"""Playbook smcp.platform.artifacts: an offline bundle of stand-ins from a local HTTP mirror.

The real upstream files cannot be downloaded on this machine, so the mirror serves stand-ins (shell
scripts, small tarballs, tiny OCI images built here) and ``artifacts_checksums`` gives their sums.
The helpers are shared with tests/integration/test_kube_artifacts_live.py.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import subprocess
import tarfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(ROOT / ".venv" / "bin" / "ansible-playbook")
ARTIFACTS = ROOT / "playbooks" / "artifacts.yml"
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
MIRROR_NAMES = {
    "kubeadm": "kubeadm",
    "kubelet": "kubelet",
    "kubectl": "kubectl",
    "runc": "runc",
    "crictl": "crictl.tar.gz",
    "cni_plugins": "cni.tgz",
    "containerd": "containerd.tar.gz",
    "etcd": "etcd.tar.gz",
}


def ansible_env() -> dict[str, str]:
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_NOCOLOR="1",
    )


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def oci_archive(ref: str) -> bytes:
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


class Server:
    """A quiet HTTP server for one directory, on ``host``."""

    def __init__(self, directory: Path, host: str) -> None:
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer((host, 0), handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def stand_in_mirror(mirror: Path, version: str) -> dict[str, str]:
    """Stand-in files for every file of a release in ``mirror``; returns the kube_artifacts_checksums."""
    files = {
        name: f"#!/bin/sh\necho '{name} stand-in v{version}'\n".encode() for name in ("kubeadm", "kubelet", "kubectl")
    }
    files["runc"] = b"#!/bin/sh\necho runc stand-in\n"
    files["crictl.tar.gz"] = tar_gz({"crictl": b"#!/bin/sh\necho crictl stand-in\n"})
    files["cni.tgz"] = tar_gz(
        {f"./{p}": f"#!/bin/sh\necho {p}\n".encode() for p in ("bridge", "host-local", "loopback")}
    )
    files["containerd.tar.gz"] = tar_gz({"bin/containerd": b"#!/bin/sh\n"})
    files["etcd.tar.gz"] = tar_gz({"etcd/etcd": b"#!/bin/sh\n"})
    for name, data in files.items():
        (mirror / name).write_bytes(data)
    return {key: hashlib.sha256(files[name]).hexdigest() for key, name in MIRROR_NAMES.items()}


def build_vars(work: Path, mirror_url: str, version: str, checksums: dict[str, str]) -> Path:
    """The artifacts playbook's extra vars for a bundle of stand-ins (images as local OCI archives)."""
    archives = {}
    for key, ref in IMAGES.items():
        path = work / f"{key}.oci.tar"
        path.write_bytes(oci_archive(ref))
        archives[ref] = str(path)
    extra = {
        "artifacts_bundle_out": str(work / "bundle" / f"{version}-amd64"),
        "artifacts_version": version,
        "artifacts_urls": {key: f"{mirror_url}/{name}" for key, name in MIRROR_NAMES.items()},
        "artifacts_checksums": checksums,
        "artifacts_image_archives": archives,
    }
    path = work / "build.json"
    path.write_text(json.dumps(extra))
    return path


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False, env=ansible_env(), timeout=900)


def test_bundle_build_verify_idempotent_and_mismatch(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    checksums = stand_in_mirror(mirror, VERSION)
    server = Server(mirror, "127.0.0.1")
    try:
        extra = build_vars(tmp_path, server.url, VERSION, checksums)
        first = run(PLAYBOOK, str(ARTIFACTS), "-e", f"@{extra}")
        assert first.returncode == 0, first.stdout[-4000:]
        out = tmp_path / "bundle" / f"{VERSION}-amd64"
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["format"] == 1 and manifest["kubernetes_version"] == VERSION and manifest["arch"] == "amd64"
        assert {f["name"] for f in manifest["files"]} == set(MIRROR_NAMES)
        for entry in manifest["files"]:
            assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
            assert entry["sha256"] == checksums[entry["name"]] and entry["source"].startswith("https://")
        assert {i["ref"] for i in manifest["images"]} == set(IMAGES.values())
        for image in manifest["images"]:
            assert hashlib.sha256((out / image["path"]).read_bytes()).hexdigest() == image["sha256"]
        again = run(PLAYBOOK, str(ARTIFACTS), "-e", f"@{extra}")
        assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
        (out / "bin" / "kubectl").unlink()
        wrong = run(
            PLAYBOOK,
            str(ARTIFACTS),
            "-e",
            f"@{extra}",
            "-e",
            json.dumps({"artifacts_checksums": {**checksums, "kubectl": "1" * 64}}),
        )
    finally:
        server.close()
    assert wrong.returncode != 0
    assert (
        f"sha256 mismatch for file {server.url}/kubectl: expected {'1' * 64}, actual {checksums['kubectl']}"
        in wrong.stdout
    )
    assert not (out / "bin" / "kubectl").exists() and not list((out / "bin").glob(".smcp-fetch-*"))


def test_bundle_of_an_unknown_version_fails(tmp_path):
    bad = run(PLAYBOOK, str(ARTIFACTS), "-e", f"artifacts_bundle_out={tmp_path}/b", "-e", "artifacts_version=1.99.0")
    assert bad.returncode != 0 and "1.99.0 is not in the versions table" in bad.stdout
    assert not (tmp_path / "b").exists()
