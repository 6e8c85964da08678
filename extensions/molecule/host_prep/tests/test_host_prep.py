"""What a user relies on after prepare_hosts: swap off, kernel settings live and persisted,
time sync, names, and a containerd that really runs a container."""

from __future__ import annotations

import base64
import pathlib

testinfra_hosts = ["all"]

SYSCTL_FILE = "/etc/sysctl.d/90-smcp.conf"
IMAGE_REF = "smcp.test/busybox:1"


def _persisted_sysctls(host) -> dict[str, str]:
    values = {}
    for line in host.file(SYSCTL_FILE).content_string.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def test_swap_off_now_and_across_reboots(host):
    # No active swap device (a sandbox host sees the machine's, which has none: that swap is turned off is
    # checked from the role's decision in test_swap_decision.py).
    assert host.file("/proc/swaps").content_string.splitlines()[1:] == []
    # The fstab swap entry planted by prepare.yml (first host) is commented out; none is active anywhere.
    for line in host.file("/etc/fstab").content_string.splitlines():
        fields = line.split()
        assert line.lstrip().startswith("#") or len(fields) < 3 or fields[2] != "swap", line
    if host.backend.get_hostname() == "mol-host-prep-1":
        assert "# /dev/sdz9 none swap sw 0 0" in host.file("/etc/fstab").content_string
    # No swap unit can be pulled in at boot.
    assert host.run("systemctl is-enabled swap.target").stdout.strip() == "masked"


def test_kernel_parameters_persisted_and_live(host):
    persisted = _persisted_sysctls(host)
    assert persisted["net.ipv4.ip_forward"] == "1"
    assert persisted["net.bridge.bridge-nf-call-iptables"] == "1"
    assert persisted["vm.overcommit_memory"] == "1"
    assert persisted["kernel.panic"] == "10"
    # net.* parameters are per network namespace: live on a sandbox host too. kernel.*, vm.*, fs.*
    # belong to the machine's shared kernel and are only persisted there.
    live_keys = [key for key in persisted if key.startswith("net.")]
    assert live_keys
    for key in live_keys:
        assert host.file("/proc/sys/" + key.replace(".", "/")).content_string.strip() == persisted[key], key


def test_kernel_modules_persisted_and_present(host):
    modules = host.file("/etc/modules-load.d/90-smcp.conf").content_string.split()
    assert {"overlay", "br_netfilter"} <= set(modules)
    assert "overlay" in host.file("/proc/filesystems").content_string
    assert host.file("/proc/sys/net/bridge/bridge-nf-call-iptables").exists


def test_chrony_runs_without_touching_the_shared_clock(host):
    chrony = host.service("chrony")
    assert chrony.is_running
    assert chrony.is_enabled
    cmdline = host.check_output("cat /proc/$(pidof -s chronyd)/cmdline | tr '\\0' ' '")
    assert "-x" in cmdline.split()
    assert "pool 2.debian.pool.ntp.org iburst" in host.file("/etc/chrony/chrony.conf").content_string


def test_hostname_from_inventory(host):
    name = host.backend.get_hostname()
    assert host.check_output("hostname") == name
    assert host.file("/etc/hostname").content_string.strip() == name


def test_cluster_marker_for_preflight_reruns(host):
    marker = host.file("/etc/smcp/cluster")
    assert marker.content_string == "smcp\n"
    assert marker.mode == 0o644


def test_cluster_members_resolve_and_answer(host):
    me = host.backend.get_hostname()
    members = [f"mol-host-prep-{index}" for index in (1, 2, 3)]
    for member in members:
        address = host.check_output(f"getent hosts {member}").split()[0]
        assert address.startswith("10.")
        if member != me:
            assert host.run(f"timeout 3 bash -c 'echo > /dev/tcp/{member}/22'").rc == 0, member


def test_containerd_configured_for_kubernetes(host):
    containerd = host.service("containerd")
    assert containerd.is_running
    assert containerd.is_enabled
    config = host.file("/etc/containerd/config.toml").content_string
    assert "SystemdCgroup = true" in config
    assert 'sandbox_image = "registry.k8s.io/pause:3.9"' in config
    assert 'bin_dir = "/opt/cni/bin"' in config
    assert "runtime-endpoint: unix:///run/containerd/containerd.sock" in host.file("/etc/crictl.yaml").content_string
    archive = host.ansible.get_variables().get("containerd_install_method") == "archive"
    exec_start = host.check_output("systemctl show -p ExecStart containerd")
    assert ("/usr/local/bin/containerd" in exec_start) == archive, exec_start
    # CRI plugin loaded with this configuration.
    assert host.run("sudo -n ctr plugins ls | grep -E 'io.containerd.grpc.v1 +cri .* ok'").rc == 0


def test_containerd_runs_a_container(host):
    """Build a one-binary image here (no registry), import it, run it with systemd cgroups."""
    name = host.backend.get_hostname().replace("mol-host-prep-", "verify-")
    script = base64.b64encode((pathlib.Path(__file__).parent / "mkimage.py").read_bytes()).decode()
    build = host.run(
        "set -e; rm -rf /tmp/smcp-image && mkdir -p /tmp/smcp-image && cd /tmp/smcp-image"
        f" && echo {script} | base64 -d > mkimage.py"
        " && apt-get download busybox-static >/dev/null && dpkg-deb -x busybox-static_*.deb root"
        f" && python3 mkimage.py root/bin/busybox {IMAGE_REF} image.tar"
    )
    assert build.rc == 0, build.stderr
    imported = host.run("sudo -n ctr -n k8s.io image import /tmp/smcp-image/image.tar")
    assert imported.rc == 0, imported.stderr
    run = host.run(
        f"sudo -n ctr -n k8s.io run --rm --runc-systemd-cgroup --cgroup system.slice:smcp-verify:{name}"
        f" {IMAGE_REF} {name} /bin/busybox sh -c 'echo hello from {name}; cat /proc/self/cgroup'"
    )
    assert run.rc == 0, run.stderr
    assert run.stdout.startswith(f"hello from {name}\n")
    # The container ran in its own systemd scope under system.slice.
    assert f"/system.slice/smcp-verify-{name}.scope" in run.stdout
