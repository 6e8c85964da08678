"""The sandbox puts back the machine-wide values it changes (inotify limit, ip_forward)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from smcp_api.sandbox import system


@pytest.fixture
def fake_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("SMCP_STATE_DIR", str(tmp_path / "state"))
    files = {"fs.inotify.max_user_instances": tmp_path / "inotify", "net.ipv4.ip_forward": tmp_path / "fwd"}
    files["fs.inotify.max_user_instances"].write_text("128\n")
    files["net.ipv4.ip_forward"].write_text("0\n")
    monkeypatch.setattr(system, "machine_sysctls", lambda: dict(files))
    return files


def _podman_ps(running: str) -> object:
    def fake(*args: str, check: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess[str]:
        assert args[0] == "ps"
        return subprocess.CompletedProcess(["podman", *args], 0, running, "")

    return fake


def test_values_journalled_once_and_restored(fake_machine: dict[str, Path], monkeypatch) -> None:
    system.remember_machine_sysctls()
    fake_machine["fs.inotify.max_user_instances"].write_text("512\n")
    fake_machine["net.ipv4.ip_forward"].write_text("1\n")
    system.remember_machine_sysctls()  # a later sandbox must not journal the changed values
    assert json.loads(system.sysctl_journal().read_text()) == {
        "fs.inotify.max_user_instances": "128",
        "net.ipv4.ip_forward": "0",
    }
    monkeypatch.setattr(system, "podman", _podman_ps(""))
    logged: list[str] = []
    system.restore_machine_sysctls(logged.append)
    assert fake_machine["fs.inotify.max_user_instances"].read_text().strip() == "128"
    assert fake_machine["net.ipv4.ip_forward"].read_text().strip() == "0"
    assert not system.sysctl_journal().exists()
    assert len(logged) == 2


def test_ip_forward_kept_while_other_containers_run(fake_machine: dict[str, Path], monkeypatch) -> None:
    system.remember_machine_sysctls()
    fake_machine["net.ipv4.ip_forward"].write_text("1\n")
    monkeypatch.setattr(system, "podman", _podman_ps("abc123\n"))
    logged: list[str] = []
    system.restore_machine_sysctls(logged.append)
    assert fake_machine["net.ipv4.ip_forward"].read_text().strip() == "1"
    assert any("other podman containers" in line for line in logged)


def test_restore_without_journal_changes_nothing(fake_machine: dict[str, Path]) -> None:
    fake_machine["net.ipv4.ip_forward"].write_text("1\n")
    system.restore_machine_sysctls(lambda _line: None)
    assert fake_machine["net.ipv4.ip_forward"].read_text().strip() == "1"


def test_machine_sysctls_cover_kernel_global_trees() -> None:
    found = system.machine_sysctls()
    assert "net.ipv4.ip_forward" in found
    assert "fs.inotify.max_user_instances" in found
    assert "fs.protected_regular" in found  # written by systemd in every sandbox host at boot
    assert all(k.split(".")[0] in {"kernel", "vm", "fs", "net"} for k in found)
    assert not any(k.startswith("net.") and k != "net.ipv4.ip_forward" for k in found)
    assert "kernel.ns_last_pid" not in found
