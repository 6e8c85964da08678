"""smcp.platform.cni_manifests writes O(dest) with the shared writer: 0600, idempotent, check mode, file args."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.modules import cni_manifests

SCHEMAS = str(Path(__file__).resolve().parents[4] / "roles/cni/files/schemas")


def run(capsys, **args) -> dict:
    base = {
        "cni": "flannel",
        "kubernetes_version": "1.35.0",
        "pod_cidr": "10.244.0.0/16",
        "interface_mtus": {"cp1": 1500},
        "schema_dir": SCHEMAS,
    }
    with patch_module_args({**base, **args}), pytest.raises(SystemExit):
        cni_manifests.main()
    return json.loads(capsys.readouterr().out)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dest_is_written_private_then_left_alone(tmp_path, capsys):
    dest = tmp_path / "cni.yaml"
    first = run(capsys, dest=str(dest))
    assert first["changed"] is True
    assert list(yaml.safe_load_all(dest.read_text())) == first["objects"]
    assert mode(dest) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["cni.yaml"]  # no temporary file left behind

    assert run(capsys, dest=str(dest))["changed"] is False


def test_check_mode_reports_the_change_and_writes_nothing(tmp_path, capsys):
    dest = tmp_path / "cni.yaml"
    assert run(capsys, dest=str(dest), _ansible_check_mode=True)["changed"] is True
    assert not dest.exists()
    run(capsys, dest=str(dest))
    before = dest.read_text()
    assert run(capsys, dest=str(dest), encapsulation="none", _ansible_check_mode=True)["changed"] is True
    assert dest.read_text() == before


def test_file_arguments_apply(tmp_path, capsys):
    dest = tmp_path / "cni.yaml"
    run(capsys, dest=str(dest))
    assert run(capsys, dest=str(dest), mode="0640")["changed"] is True
    assert mode(dest) == 0o640
    assert run(capsys, dest=str(dest), mode="0640")["changed"] is False
