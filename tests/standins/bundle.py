#!/usr/bin/env python3
"""Build an offline bundle (K8S_CONTRACT section 5) from the stand-ins, for tests only.

    python tests/standins/bundle.py build --out DIR --version 1.35.0 [--upstream URL] [--no-images]
    python tests/standins/bundle.py build --out PARENT --version 1.34.4 --version 1.35.1   # PARENT/<v>-amd64/

Prints JSON: one version -> {"dir": DIR, "kube_artifacts_checksums": {...}}; several ->
{"bundles": {"1.34.4": {"dir": ..., "kube_artifacts_checksums": {...}}, ...}}.

- kubeadm, kubelet, kubectl: tests/standins/standin.py with BUILT_VERSION (and BUILT_UPSTREAM when
  --upstream is given) set, packed with PyYAML's pure-Python modules into one executable zip
  (`#!/usr/bin/env python3`); byte-for-byte reproducible, so the checksums only change with the inputs.
- crictl: the same program in crictl-v<version>-linux-<arch>.tar.gz (as upstream packs crictl).
- cni_plugins: the real plugin binaries of Debian's containernetworking-plugins package (apt-get download,
  cached under --cache), or with --no-apt (or when apt cannot get it) a tarball with a stand-in `loopback`.
- images: tiny real OCI archives (one empty layer) named like the real images, so the image import step
  runs for real with containerd; --no-images leaves them out.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
CNI_FALLBACK_VERSION = "1.1.1"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def program(version: str, upstream: str) -> bytes:
    """The stand-in as one executable zip: shebang + zip(__main__.py, yaml/*.py)."""
    source = (HERE / "standin.py").read_text(encoding="utf-8")
    source, n = re.subn(r'^BUILT_VERSION = ".*"$', f'BUILT_VERSION = "{version}"', source, count=1, flags=re.M)
    assert n == 1, "BUILT_VERSION line not found in standin.py"
    if upstream:
        source = re.sub(
            r'^BUILT_UPSTREAM = ".*"$', f"BUILT_UPSTREAM = {json.dumps(upstream)}", source, count=1, flags=re.M
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)

        add("__main__.py", source.encode())
        yaml_dir = Path(yaml.__file__).resolve().parent
        for module in sorted(yaml_dir.glob("*.py")):
            if module.name != "cyaml.py":  # needs the C extension; yaml/__init__ falls back to pure Python
                add(f"yaml/{module.name}", module.read_bytes())
    return b"#!/usr/bin/env python3\n" + buf.getvalue()


def targz(members: dict[str, tuple[bytes, int]]) -> bytes:
    """A reproducible .tar.gz of {name: (data, mode)}."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, (data, mode) in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def cni_plugins(cache: Path, use_apt: bool) -> tuple[bytes, str, str]:
    """(tarball, version, source) from Debian's containernetworking-plugins, or a stand-in fallback."""
    if use_apt:
        cache.mkdir(parents=True, exist_ok=True)
        debs = sorted(cache.glob("containernetworking-plugins_*.deb"))
        if not debs:
            subprocess.run(
                ["apt-get", "download", "containernetworking-plugins"],
                cwd=cache,
                capture_output=True,
                check=False,
                timeout=300,
            )
            debs = sorted(cache.glob("containernetworking-plugins_*.deb"))
        if debs:
            version = debs[-1].name.split("_")[1].split("+")[0].split("-")[0]
            cached = cache / (debs[-1].name + ".tgz")
            if cached.exists():
                return cached.read_bytes(), version, f"debian:{debs[-1].name}"
            with tempfile.TemporaryDirectory() as tmp:
                res = subprocess.run(["dpkg-deb", "-x", str(debs[-1]), tmp], capture_output=True, check=False)
                plugins = sorted((Path(tmp) / "usr/lib/cni").glob("*")) if res.returncode == 0 else []
                if plugins:
                    members = {f"./{f.name}": (f.read_bytes(), 0o755) for f in plugins if f.is_file()}
                    cached.write_bytes(targz(members))
                    return cached.read_bytes(), version, f"debian:{debs[-1].name}"
    stub = b"#!/bin/sh\n# stand-in CNI plugin (tests only): no Debian package was available\necho '{}'\n"
    return targz({"./loopback": (stub, 0o755)}), CNI_FALLBACK_VERSION, "stand-in (no Debian package)"


def oci_image(ref: str) -> bytes:
    """A minimal valid OCI image archive (one empty layer) that `ctr images import` names `ref`."""
    empty_tar = b"\0" * 1024
    layer = io.BytesIO()
    with gzip.GzipFile(fileobj=layer, mode="wb", mtime=0) as gz:
        gz.write(empty_tar)
    layer_bytes = layer.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"io.smcp.standin": ref}, "Entrypoint": ["/standin"]},  # one digest per ref
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha256(empty_tar)}"]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{sha256(config)}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{sha256(layer_bytes)}",
                    "size": len(layer_bytes),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": f"sha256:{sha256(manifest)}",
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": ref,
                        "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1],
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    members = {"oci-layout": (b'{"imageLayoutVersion":"1.0.0"}', 0o644), "index.json": (index, 0o644)}
    for blob in (layer_bytes, config, manifest):
        members[f"blobs/sha256/{sha256(blob)}"] = (blob, 0o644)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, (data, mode) in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def image_refs(version: str) -> list[str]:
    try:
        from ansible_collections.smcp.platform.plugins.module_utils import versions

        return sorted(versions.release(version)["images"].values())
    except (ImportError, ValueError):
        return [
            f"registry.k8s.io/{c}:v{version}"
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
        ] + ["registry.k8s.io/pause:3.10", "registry.k8s.io/coredns/coredns:v1.12.1"]


def build(
    out: Path, version: str, arch: str, upstream: str, cache: Path, use_apt: bool, images: bool
) -> dict[str, Any]:
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise SystemExit(f"--version must be MAJOR.MINOR.PATCH, got {version!r}")
    if out.exists():
        shutil.rmtree(out)
    (out / "bin").mkdir(parents=True)
    exe = program(version, upstream)
    cni, cni_version, cni_source = cni_plugins(cache, use_apt)
    files = {
        "kubeadm": ("bin/kubeadm", exe, "tests/standins/standin.py (stand-in)"),
        "kubelet": ("bin/kubelet", exe, "tests/standins/standin.py (stand-in)"),
        "kubectl": ("bin/kubectl", exe, "tests/standins/standin.py (stand-in)"),
        "crictl": (
            f"bin/crictl-v{version}-linux-{arch}.tar.gz",
            targz({"crictl": (exe, 0o755)}),
            "tests/standins/standin.py (stand-in)",
        ),
        "cni_plugins": (f"bin/cni-plugins-linux-{arch}-v{cni_version}.tgz", cni, cni_source),
    }
    manifest: dict[str, Any] = {"format": 1, "kubernetes_version": version, "arch": arch, "files": [], "images": []}
    for name, (path, data, source) in files.items():
        (out / path).write_bytes(data)
        (out / path).chmod(0o755 if path.startswith("bin/kube") and "." not in Path(path).name else 0o644)
        manifest["files"].append({"name": name, "path": path, "sha256": sha256(data), "url": source})
    if images:
        (out / "images").mkdir()
        for ref in image_refs(version):
            data = oci_image(ref)
            path = "images/" + ref.split("/", 1)[-1].replace("/", "_").replace(":", "_") + ".oci.tar"
            (out / path).write_bytes(data)
            manifest["images"].append({"ref": ref, "path": path, "sha256": sha256(data)})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {"dir": str(out), "kube_artifacts_checksums": {f["name"]: f["sha256"] for f in manifest["files"]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bundle.py", description="offline bundle of stand-ins (tests only)")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", required=True, type=Path, help="bundle dir (one version) or parent dir (several)")
    b.add_argument("--version", action="append", required=True, help="Kubernetes version; repeat for several")
    b.add_argument("--arch", default="amd64")
    b.add_argument("--upstream", default="", help="API test server URL baked into the kube-apiserver stand-in")
    b.add_argument("--cache", type=Path, default=Path("/var/cache/smcp/standins"), help="where the .deb is kept")
    b.add_argument("--no-apt", action="store_true", help="do not fetch Debian's CNI plugins (stand-in tarball)")
    b.add_argument("--no-images", action="store_true", help="no OCI image archives in the bundle")
    args = parser.parse_args(argv)
    kwargs = {
        "arch": args.arch,
        "upstream": args.upstream,
        "cache": args.cache,
        "use_apt": not args.no_apt,
        "images": not args.no_images,
    }
    if len(args.version) == 1:
        result: dict[str, Any] = build(args.out, args.version[0], **kwargs)
    else:
        result = {"bundles": {v: build(args.out / f"{v}-{args.arch}", v, **kwargs) for v in args.version}}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
