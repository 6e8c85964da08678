"""smcp.platform.kubeadm: validate, then init or join; every output and failure message without secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.modules import kubeadm

TOKEN = "abcdef.0123456789abcdef"
KEY = "0f" * 32


def fake_kubeadm(tmp_path: Path, validate_rc: int = 0, run_rc: int = 0) -> Path:
    """A kubeadm that records its argv and prints a token and a key, as kubeadm init does."""
    script = tmp_path / "kubeadm"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/calls\n'
        f'if [ "$1" = config ]; then echo "validate: token {TOKEN}" >&2; exit {validate_rc}; fi\n'
        f'echo "kubeadm join 10.0.0.1:6443 --token {TOKEN} --certificate-key {KEY}"\n'
        f'echo "error: preflight {TOKEN}" >&2\n'
        f"exit {run_rc}\n"
    )
    script.chmod(0o755)
    return script


def run(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        kubeadm.main()
    out = capsys.readouterr().out
    assert TOKEN not in out and KEY not in out, out
    return json.loads(out)


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_validates_then_runs_init_with_upload_certs_and_redacts(tmp_path, capsys):
    binary = fake_kubeadm(tmp_path)
    result = run(capsys, command="init", config="/c.yaml", upload_certs=True, binary=str(binary))
    assert result["changed"] is True and result["rc"] == 0
    assert calls(tmp_path) == ["config validate --config /c.yaml", "init --config /c.yaml --upload-certs"]
    assert "--token <token> --certificate-key <key>" in result["stdout"]


def test_run_false_only_validates(tmp_path, capsys):
    binary = fake_kubeadm(tmp_path)
    result = run(capsys, command="join", config="/j.yaml", run=False, binary=str(binary))
    assert result["changed"] is False
    assert calls(tmp_path) == ["config validate --config /j.yaml"]


def test_a_rejected_config_fails_before_the_run_naming_it(tmp_path, capsys):
    binary = fake_kubeadm(tmp_path, validate_rc=3)
    result = run(capsys, command="join", config="/j.yaml", binary=str(binary))
    assert result["failed"] is True
    assert result["msg"] == "kubeadm config validate of /j.yaml failed (rc 3): validate: token <token>"
    assert calls(tmp_path) == ["config validate --config /j.yaml"]


def test_a_failed_run_fails_with_the_redacted_tail(tmp_path, capsys):
    binary = fake_kubeadm(tmp_path, run_rc=1)
    result = run(capsys, command="join", config="/j.yaml", binary=str(binary), tail=40)
    assert result["failed"] is True and result["rc"] == 1
    assert result["msg"].startswith("kubeadm join failed (rc 1): ")
    assert result["msg"].endswith("--token <token> --certificate-key <key>")
    assert len(result["msg"]) == len("kubeadm join failed (rc 1): ") + 40


def test_check_mode_runs_nothing(tmp_path, capsys):
    binary = fake_kubeadm(tmp_path)
    result = run(capsys, command="init", config="/c.yaml", binary=str(binary), _ansible_check_mode=True)
    assert result["changed"] is True and result["cmd"] == [str(binary), "init", "--config", "/c.yaml"]
    assert calls(tmp_path) == []
