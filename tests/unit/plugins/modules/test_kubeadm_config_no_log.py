"""Roles control_plane and node: every task that produces or displays a secret has no_log: true.

Secrets here: the bootstrap token (module bootstrap_token), the certificate key and the token kubeadm
prints (kubeadm init / upload-certs / join output), admin.conf (client key). Tasks that only hand the
token to smcp.platform.kubeadm_config are fine without it: that module declares token and
certificate_key no_log, so Ansible masks them. kubeadm init and join run through smcp.platform.kubeadm,
which redacts their output itself (tests/unit/plugins/modules/test_kubeadm.py). The sandbox run in
docs/control-plane.md checked real -vvv output for the token secrets and the admin key.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
TASK_FILES = sorted((ROOT / "roles" / "control_plane" / "tasks").glob("*.yml")) + sorted(
    (ROOT / "roles" / "node" / "tasks").glob("*.yml")
)
SECRET_ARGV = ({"init"}, {"join"}, {"upload-certs"})


def _tasks(node: object):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if "block" in node:
            yield from _tasks(node["block"])
        else:
            yield node


def _secret(task: dict) -> str:
    if "smcp.platform.kubeadm" in task:
        return "kubeadm module"
    if "smcp.platform.bootstrap_token" in task:
        return "bootstrap token"
    slurp = task.get("ansible.builtin.slurp") or {}
    if "admin.conf" in str(slurp.get("src", "")):
        return "admin.conf"
    if "ansible.builtin.copy" in task and "operator_kubeconfig" in str(task):
        return "operator kubeconfig"
    argv = (task.get("ansible.builtin.command") or {}).get("argv") or []
    words = {str(a) for a in argv}
    if "/usr/local/bin/kubeadm" in words and "validate" not in words and any(s <= words for s in SECRET_ARGV):
        return "kubeadm output"
    return ""


def test_the_check_finds_every_secret_task() -> None:
    found = sorted(_secret(t) for p in TASK_FILES for t in _tasks(yaml.safe_load(p.read_text()) or []) if _secret(t))
    # init and 2 joins through the module, upload-certs; 2 token tasks; admin.conf read; operator kubeconfig written
    assert found == (
        ["admin.conf"] + ["bootstrap token"] * 2 + ["kubeadm module"] * 3 + ["kubeadm output"] + ["operator kubeconfig"]
    )


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_secret_tasks_have_no_log(path: Path) -> None:
    for task in _tasks(yaml.safe_load(path.read_text()) or []):
        kind = _secret(task)
        if kind and kind != "kubeadm module":
            assert task.get("no_log") is True, f"{path.name}: task {task.get('name')!r} handles the {kind}"


def test_kubeadm_runs_only_through_the_redacting_module() -> None:
    for path in TASK_FILES:
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            argv = [str(a) for a in (task.get("ansible.builtin.command") or {}).get("argv") or []]
            assert argv[:2] not in (["/usr/local/bin/kubeadm", "init"], ["/usr/local/bin/kubeadm", "join"]) or (
                "phase" in argv
            ), f"{path.name}: task {task.get('name')!r} runs kubeadm without smcp.platform.kubeadm"
            assert "ansible.builtin.shell" not in task or "kubeadm" not in str(task), task.get("name")
