"""module_utils/_io: the one file writer of the collection's modules, on a real AnsibleModule."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils import _io


class RecordingModule(AnsibleModule):
    """AnsibleModule that records the destination's mode right after each atomic_move."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.modes_after_move: list[int] = []

    def atomic_move(self, src, dest, unsafe_writes=False, keep_dest_attrs=True):
        super().atomic_move(src, dest, unsafe_writes, keep_dest_attrs)
        self.modes_after_move.append(stat.S_IMODE(os.stat(dest).st_mode))


def module_for(path: Path, check_mode: bool = False, **args) -> RecordingModule:
    with patch_module_args({"path": str(path), "_ansible_check_mode": check_mode, **args}):
        return RecordingModule(
            argument_spec={"path": {"type": "path", "required": True}},
            add_file_common_args=True,
            supports_check_mode=True,
        )


def write(module: RecordingModule, content, default_mode=None, diff=None, **overrides) -> bool:
    args = _io.file_arguments(module, module.params["path"], default_mode, **overrides)
    return _io.write_file(module, content, args, diff)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_content_and_default_mode_and_is_never_wider(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    old_umask = os.umask(0)  # atomic_move would make a created file 0666 under this umask
    try:
        module = module_for(path)
        assert write(module, "key material\n", default_mode=0o600) is True
    finally:
        os.umask(old_umask)
    assert path.read_text() == "key material\n" and mode_of(path) == 0o600
    assert all(mode & 0o077 == 0 for mode in module.modes_after_move), module.modes_after_move
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]  # no temporary file left


def test_user_mode_and_owner_win_over_the_default_and_forced_mode_wins_over_the_user(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() != 0:
        pytest.skip("changing the owner needs root")
    module = module_for(path, mode="0640", owner="nobody")
    assert write(module, b"x", default_mode=0o600) is True
    assert mode_of(path) == 0o640 and path.stat().st_uid == nobody.pw_uid
    forced = module_for(path, mode="0644")
    assert write(forced, b"x", mode=0o600) is True
    assert mode_of(path) == 0o600


def test_symbolic_mode_and_same_content_is_no_change(tmp_path: Path) -> None:
    path = tmp_path / "f"
    old_umask = os.umask(0o022)
    try:  # like ansible.builtin.file: a symbolic mode changes what a new file would get (0644 here)
        assert write(module_for(path, mode="u=rw,g=r,o-r"), "a") is True
    finally:
        os.umask(old_umask)
    assert mode_of(path) == 0o640
    assert write(module_for(path, mode="g+w"), "b") is True
    assert mode_of(path) == 0o660
    assert write(module_for(path, mode="g+w"), "b") is False


def test_replaces_the_file_instead_of_rewriting_it(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("old\n")
    with open(path, encoding="utf-8") as reader:  # a reader of the old file keeps a whole old file
        assert write(module_for(path), "new\n") is True
        assert reader.read() == "old\n"
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_existing_file_gets_its_final_mode_before_the_new_content_lands(tmp_path: Path) -> None:
    path = tmp_path / "peer.key"
    path.write_text("old\n")
    path.chmod(0o644)
    module = module_for(path)
    diff: dict = {"before": {}, "after": {}}
    assert write(module, "new key\n", diff=diff, mode=0o600) is True
    assert module.modes_after_move == [0o600]
    assert mode_of(path) == 0o600 and path.read_text() == "new key\n"
    assert diff == {"before": {"mode": "0644"}, "after": {"mode": "0600"}}


def test_without_a_mode_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "script"
    path.write_text("old\n")
    path.chmod(0o750)
    assert write(module_for(path), "new\n") is True
    assert mode_of(path) == 0o750


def test_a_bad_owner_fails_before_the_destination_is_touched(tmp_path: Path, capsys) -> None:
    path = tmp_path / "kept"
    path.write_text("old\n")
    args = {"path": str(path), "owner": "no-such-user-smcp"}
    with patch_module_args(args), pytest.raises(SystemExit):  # fail_json needs the module's context
        write(module_for(path, owner="no-such-user-smcp"), "new\n")
    assert "no-such-user-smcp" in capsys.readouterr().out
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


def test_check_mode_reports_and_writes_nothing(tmp_path: Path) -> None:
    new = tmp_path / "new"
    assert write(module_for(new, check_mode=True), "x", default_mode=0o600) is True
    assert not new.exists()

    same = tmp_path / "same"
    same.write_text("x")
    same.chmod(0o644)
    assert write(module_for(same, check_mode=True), "x", default_mode=0o644) is False
    diff: dict = {"before": {}, "after": {}}
    assert write(module_for(same, check_mode=True), "x", diff=diff, mode=0o600) is True
    assert mode_of(same) == 0o644 and diff["after"]["mode"] == "0600"
    assert write(module_for(same, check_mode=True), "y") is True
    assert same.read_text() == "x"
