"""Build a one-binary image as a docker-archive tarball (no registry, no docker).

Usage (on a sandbox host): python3 mkimage.py BINARY REF OUT.tar
The image holds BINARY as /bin/busybox; `ctr image import OUT.tar` makes REF available.
Runs with the target's python3 (standard library only).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile


def _tar_bytes(members: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build(binary: bytes, ref: str) -> bytes:
    """Return the docker-archive tarball of an image whose only file is /bin/busybox."""
    layer = _tar_bytes([("bin/busybox", binary, 0o755)])
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/busybox"], "Cmd": ["true"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": ["layer.tar"]}]).encode()
    return _tar_bytes([("layer.tar", layer, 0o644), (config_name, config, 0o644), ("manifest.json", manifest, 0o644)])


def main(argv: list[str]) -> int:
    binary_path, ref, out = argv[1:4]
    with open(binary_path, "rb") as handle:
        binary = handle.read()
    with open(out, "wb") as handle:
        handle.write(build(binary, ref))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
