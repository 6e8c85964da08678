"""smcp.platform.artifact_fetch: keep only files whose sha256 is the expected one."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils import artifact_fetch as af
from ansible_collections.smcp.platform.plugins.modules import artifact_fetch

PAYLOAD = b"#!/bin/sh\necho kubeadm stand-in\n"
GOOD = hashlib.sha256(PAYLOAD).hexdigest()
BAD = "0" * 64


def opener_for(payload: bytes, calls: list | None = None):
    def opener(url, timeout):
        if calls is not None:
            calls.append(url)
        return io.BytesIO(payload)

    return opener


def test_download_verify_then_kept_without_download(tmp_path):
    dest = tmp_path / "bin" / "kubeadm"
    calls: list[str] = []
    first = af.fetch("http://mirror/kubeadm", str(dest), GOOD, mode=0o755, opener=opener_for(PAYLOAD, calls))
    assert first.changed and first.action == "downloaded" and dest.read_bytes() == PAYLOAD
    assert oct(dest.stat().st_mode & 0o777) == "0o755"
    second = af.fetch(
        "http://mirror/kubeadm", str(dest), "sha256:" + GOOD.upper(), mode=0o755, opener=opener_for(b"x", calls)
    )
    assert not second.changed and second.action == "kept"
    assert calls == ["http://mirror/kubeadm"]


def test_mismatch_deletes_the_file_and_names_url_expected_actual(tmp_path):
    dest = tmp_path / "kubeadm"
    with pytest.raises(af.ChecksumMismatch) as err:
        af.fetch("http://mirror/kubeadm", str(dest), BAD, opener=opener_for(PAYLOAD))
    message = str(err.value)
    assert "http://mirror/kubeadm" in message and BAD in message and GOOD in message and "deleted" in message
    assert not dest.exists()
    assert os.listdir(tmp_path) == []  # no temporary file left behind


def test_wrong_existing_file_is_replaced(tmp_path):
    dest = tmp_path / "kubeadm"
    dest.write_bytes(b"old version")
    result = af.fetch("http://mirror/kubeadm", str(dest), GOOD, opener=opener_for(PAYLOAD))
    assert result.changed and dest.read_bytes() == PAYLOAD


def test_verify_in_place_deletes_on_mismatch(tmp_path):
    dest = tmp_path / "kubeadm"
    dest.write_bytes(PAYLOAD)
    assert not af.fetch("", str(dest), GOOD, mode=dest.stat().st_mode & 0o7777).changed
    with pytest.raises(af.ChecksumMismatch, match=BAD):
        af.fetch("", str(dest), BAD)
    assert not dest.exists()
    with pytest.raises(af.ArtifactError, match="does not exist"):
        af.fetch("", str(dest), GOOD)


def test_manifest_sum_disagreeing_fails_before_download(tmp_path):
    calls: list[str] = []
    with pytest.raises(af.ChecksumMismatch) as err:
        af.fetch("http://m/kubeadm", str(tmp_path / "k"), GOOD, manifest_sha256=BAD, opener=opener_for(PAYLOAD, calls))
    assert calls == [] and "manifest" in str(err.value) and GOOD in str(err.value) and BAD in str(err.value)


def test_check_mode_downloads_nothing(tmp_path):
    calls: list[str] = []
    result = af.fetch("http://m/k", str(tmp_path / "k"), GOOD, check_mode=True, opener=opener_for(PAYLOAD, calls))
    assert result.changed and result.action == "would download" and calls == []
    assert not (tmp_path / "k").exists()


def test_local_file_url_and_path(tmp_path):
    src = tmp_path / "src"
    src.write_bytes(PAYLOAD)
    assert af.fetch("file://" + str(src), str(tmp_path / "a"), GOOD).changed
    assert af.fetch(str(src), str(tmp_path / "b"), GOOD).changed


def test_download_error_is_named(tmp_path):
    def failing(url, timeout):
        raise OSError("connection refused")

    with pytest.raises(af.ArtifactError, match="download of http://m/k failed: connection refused"):
        af.fetch("http://m/k", str(tmp_path / "k"), GOOD, opener=failing)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value", ["abc", "", "sha1:" + GOOD, GOOD + "0"])
def test_malformed_sum(value):
    with pytest.raises(af.ArtifactError, match="64-character hex"):
        af.normalise_sha256(value)


def run(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        artifact_fetch.main()
    return json.loads(capsys.readouterr().out)


def test_module_success_and_mismatch(tmp_path, capsys):
    src = tmp_path / "src"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "kubeadm"
    ok = run(capsys, url="file://" + str(src), dest=str(dest), sha256=GOOD, mode="0755")
    assert ok["changed"] and ok["sha256"] == GOOD and ok["size"] == len(PAYLOAD)
    again = run(capsys, url="file://" + str(src), dest=str(dest), sha256=GOOD, mode="0755")
    assert not again["changed"]
    dest.unlink()
    bad = run(capsys, url="file://" + str(src), dest=str(dest), sha256=BAD)
    assert bad["failed"] and bad["expected"] == BAD and bad["actual"] == GOOD and str(src) in bad["msg"]
    assert not dest.exists()


def test_module_check_mode(tmp_path, capsys):
    src = tmp_path / "src"
    src.write_bytes(PAYLOAD)
    result = run(capsys, url="file://" + str(src), dest=str(tmp_path / "k"), sha256=GOOD, _ansible_check_mode=True)
    assert result["changed"] and not (tmp_path / "k").exists()


def test_module_bad_mode(tmp_path, capsys):
    result = run(capsys, url="file:///x", dest=str(tmp_path / "k"), sha256=GOOD, mode="rwx")
    assert result["failed"] and "octal" in result["msg"]


def test_module_file_arguments_on_download_and_on_a_kept_file(tmp_path, capsys):
    src = tmp_path / "src"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "kubeadm"
    args = {"url": "file://" + str(src), "dest": str(dest), "sha256": GOOD, "mode": "u=rwx,go=rx"}
    assert run(capsys, **args)["changed"]
    assert oct(dest.stat().st_mode & 0o777) == "0o755"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["kubeadm"]  # no temporary file left
    dest.chmod(0o600)
    checked = run(capsys, _ansible_check_mode=True, **args)
    assert checked["changed"] and checked["action"] == "kept" and oct(dest.stat().st_mode & 0o777) == "0o600"
    fixed = run(capsys, **args)
    assert fixed["changed"] and fixed["action"] == "kept" and oct(dest.stat().st_mode & 0o777) == "0o755"
    assert run(capsys, **args)["changed"] is False
