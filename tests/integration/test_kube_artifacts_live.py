"""Role kube_artifacts on 2 real sandbox hosts, from an offline bundle built by the artifacts playbook.

The bundle is built here from stand-in files (shell scripts, small tarballs, tiny OCI images)
served by a local HTTP mirror, with ``kube_artifacts_checksums`` for their sums: the real
upstream files cannot be downloaded on this machine. Host 1 installs from the bundle directory
on the controller, host 2 from the bundle served over HTTP. Needs root and podman; run with
``pytest -m sandbox tests/integration/test_kube_artifacts_live.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sandbox_ssh import ssh_argv
from tests.unit.test_kube_artifacts_bundle import (
    ARTIFACTS,
    IMAGES,
    MIRROR_NAMES,
    PLAYBOOK,
    VERSION,
    Server,
    ansible_env,
    build_vars,
    stand_in_mirror,
)

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
SANDBOX = os.environ.get("SMCP_ART_SANDBOX", "art")


def _run(*cmd: str, check: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, env=env, timeout=900)


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
    checksums = stand_in_mirror(mirror, VERSION)
    server = Server(mirror, "127.0.0.1")
    try:
        extra = build_vars(work, server.url, VERSION, checksums)
        build = _run(PLAYBOOK, str(ARTIFACTS), "-e", f"@{extra}", env=ansible_env())
        assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
    finally:
        server.close()
    out = work / "bundle" / f"{VERSION}-amd64"
    # Hosts reach the controller at their network gateway.
    served = Server(out.parent, box["gateway"])
    upstream = Server(mirror, box["gateway"])  # stands in for dl.k8s.io and GitHub (kube_artifacts_urls)
    try:
        yield {
            "dir": out,
            "url": f"{served.url}/{out.name}",
            "mirror_url": upstream.url,
            "checksums": checksums,
            "work": work,
        }
    finally:
        served.close()
        upstream.close()


def _site(work: Path, name: str, host_vars: dict[str, dict[str, object]], common: dict[str, object]) -> Path:
    work.mkdir(exist_ok=True)
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
    return _run(PLAYBOOK, "-i", box["inventory"], str(playbook), *args, env=ansible_env())


def _sh(box, host: str, command: str) -> str:
    """Run ``command`` as root on a sandbox host; its stdout (add 2>&1 for errors)."""
    node = next(h for h in box["hosts"] if h["name"] == host)
    res = _run(
        *ssh_argv(node),
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


def test_upstream_through_the_controller_cache_and_on_the_hosts(box, installed, bundle, tmp_path):
    one, two = installed["hosts"]
    for host in (one, two):
        _sh(box, host, "rm -f /usr/local/bin/kubectl /var/cache/smcp/kube-artifacts/*/kubectl")
    files = ("kubeadm", "kubelet", "kubectl", "crictl", "cni_plugins")
    common = {
        "kube_artifacts_checksums": bundle["checksums"],
        "kube_artifacts_urls": {name: f"{bundle['mirror_url']}/{MIRROR_NAMES[name]}" for name in files},
        "kube_artifacts_cache_dir": str(tmp_path / "cache"),
    }
    site = _site(bundle["work"] / "upstream", "upstream", {two: {"kube_artifacts_download_on_hosts": True}}, common)
    run = _play(box, site)
    assert run.returncode == 0, run.stdout[-4000:]
    cached = tmp_path / "cache" / VERSION / "amd64" / "kubectl"  # host one's copy came through the controller
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == bundle["checksums"]["kubectl"]
    assert sorted(p.name for p in cached.parent.iterdir()) == ["kubectl"]  # only what a host lacked
    for host in (one, two):
        assert "kubectl stand-in" in _sh(box, host, "/usr/local/bin/kubectl")
    again = _play(box, site)
    assert all("changed=0" in line for line in _recap(again.stdout)), _recap(again.stdout)


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
