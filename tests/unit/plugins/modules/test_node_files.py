"""smcp.platform.node_files: several files in one call, written only when they differ, check and diff mode."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.modules import node_files

OWNER = {"owner": str(os.getuid()), "group": str(os.getgid())}


def run(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        node_files.main()
    return json.loads(capsys.readouterr().out)


def spec(tmp_path: Path) -> dict:
    return {
        "directories": [{"path": str(tmp_path / "etc"), "mode": "0750", **OWNER}],
        "files": [
            {"dest": str(tmp_path / "etc" / "a.conf"), "content": "a = 1\n", **OWNER},
            {"dest": str(tmp_path / "b.key"), "content": "secret\n", "mode": "0600", **OWNER},
        ],
    }


def test_writes_then_changes_nothing_then_only_what_differs(tmp_path, capsys):
    first = run(capsys, **spec(tmp_path))
    assert first["changed"] is True
    assert first["changed_files"] == [str(tmp_path / "etc"), str(tmp_path / "etc" / "a.conf"), str(tmp_path / "b.key")]
    assert (tmp_path / "etc" / "a.conf").read_text() == "a = 1\n"
    assert stat.S_IMODE((tmp_path / "etc").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "etc" / "a.conf").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.key").stat().st_mode) == 0o600

    again = run(capsys, **spec(tmp_path))
    assert again["changed"] is False and again["changed_files"] == []

    (tmp_path / "b.key").chmod(0o644)
    args = spec(tmp_path)
    args["files"][0]["content"] = "a = 2\n"
    third = run(capsys, **args)
    assert third["changed_files"] == [str(tmp_path / "etc" / "a.conf"), str(tmp_path / "b.key")]
    assert (tmp_path / "etc" / "a.conf").read_text() == "a = 2\n"
    assert stat.S_IMODE((tmp_path / "b.key").stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "etc").iterdir() if p.name.startswith(".ansible_tmp")]


def test_check_mode_writes_nothing_and_diff_shows_content(tmp_path, capsys):
    (tmp_path / "etc").mkdir(mode=0o750)
    (tmp_path / "etc" / "a.conf").write_text("a = 0\n")
    result = run(capsys, _ansible_check_mode=True, _ansible_diff=True, **spec(tmp_path))
    assert result["changed"] is True
    assert result["changed_files"] == [str(tmp_path / "etc" / "a.conf"), str(tmp_path / "b.key")]
    assert (tmp_path / "etc" / "a.conf").read_text() == "a = 0\n"
    assert not (tmp_path / "b.key").exists()
    assert result["diff"][0] == {
        "before_header": str(tmp_path / "etc" / "a.conf"),
        "after_header": str(tmp_path / "etc" / "a.conf"),
        "before": "a = 0\n",
        "after": "a = 1\n",
    }


def test_a_file_in_place_of_a_directory_is_refused_naming_it(tmp_path, capsys):
    (tmp_path / "etc").write_text("not a directory")
    result = run(capsys, **spec(tmp_path))
    assert result["failed"] is True
    assert str(tmp_path / "etc") in result["msg"] and "not a directory" in result["msg"]
    assert (tmp_path / "etc").read_text() == "not a directory"


def test_relative_destination_is_refused(tmp_path, capsys):
    result = run(capsys, files=[{"dest": "etc/a.conf", "content": "x", **OWNER}])
    assert result["failed"] is True and "etc/a.conf" in result["msg"] and "absolute" in result["msg"]
