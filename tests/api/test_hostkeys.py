"""smcp_api.hostkeys: fingerprints as ssh-keygen prints them, strict known_hosts validation, scanning a real sshd."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from smcp_api import hostkeys
from smcp_api.hostkeys import HostKeyError, ScanError

from tests.api.sshd import free_port, keygen, keygen_fingerprint, local_sshd

KEY_TYPES = [("ed25519", None), ("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521), ("rsa", 3072)]


@pytest.fixture(scope="module")
def pubkeys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    return {f"{t}{bits or ''}": keygen(root / f"{t}{bits or ''}", t, bits) for t, bits in KEY_TYPES}


def _fields(pub: Path) -> tuple[str, str]:
    key_type, data = pub.read_text().split()[:2]
    return key_type, data


@pytest.mark.parametrize("name", [f"{t}{bits or ''}" for t, bits in KEY_TYPES])
def test_fingerprint_is_what_ssh_keygen_prints(pubkeys, name):
    key_type, data = _fields(pubkeys[name])
    assert hostkeys.fingerprints(f"node1 {key_type} {data}\n") == [keygen_fingerprint(pubkeys[name])]


def test_fingerprints_skip_what_does_not_parse(pubkeys):
    ed = " ".join(_fields(pubkeys["ed25519"]))
    rsa = " ".join(_fields(pubkeys["rsa3072"]))
    text = f"# comment\n\ngarbage\n@revoked * {rsa}\na {ed}\nb {ed}\nc {rsa} comment\n"
    assert hostkeys.fingerprints(text) == [
        keygen_fingerprint(pubkeys["ed25519"]),
        keygen_fingerprint(pubkeys["rsa3072"]),
    ]
    assert hostkeys.fingerprints(None) == [] and hostkeys.fingerprints("x" * 10**6) == []


def test_normalise_names_the_host_as_ssh_looks_it_up_and_is_idempotent(pubkeys):
    ed = " ".join(_fields(pubkeys["ed25519"]))
    ec = " ".join(_fields(pubkeys["ecdsa256"]))
    given = f"# mine\n|1|c2FsdA==|aGFzaA== {ed}\nnode1,192.0.2.7 {ec} a comment\nnode1 {ed}\n"
    on_2222 = hostkeys.normalise(given, "192.0.2.7", 2222)
    assert on_2222 == f"[192.0.2.7]:2222 {ed}\n[192.0.2.7]:2222 {ec}\n"
    assert hostkeys.normalise(on_2222, "192.0.2.7", 2222) == on_2222
    assert hostkeys.normalise(on_2222, "Node1.Example.org", 22) == f"node1.example.org {ed}\nnode1.example.org {ec}\n"
    assert hostkeys.normalise(on_2222, "2001:db8::1", 2200).startswith("[2001:db8::1]:2200 ssh-ed25519 ")


def _garbage(pubkeys: dict[str, Path]) -> list[tuple[str, str]]:
    ed_type, ed = _fields(pubkeys["ed25519"])
    _, rsa = _fields(pubkeys["rsa3072"])
    short = base64.b64encode(base64.b64decode(ed)[:-3]).decode()
    return [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("garbage", "line 1 is not 'HOST KEYTYPE KEY'"),
        (f"{ed_type} {ed}", "line 1 starts with the key type"),
        (f"@cert-authority * {ed_type} {ed}", "marker '@cert-authority' is not accepted"),
        (f"@revoked * {ed_type} {ed}", "marker '@revoked' is not accepted"),
        (f"h ssh-dss {ed}", "key type 'ssh-dss' is not an SSH host key type"),
        (f'h {ed_type} {ed[:-4]}"x"', "not valid base64"),
        (f"h {ed_type} {rsa}", "is not a ssh-ed25519 key"),
        (f"h {ed_type} {short}", "not a valid public key"),
        (f"# ok\nh {ed_type} {ed}\nh {ed_type} {ed}\x07", "line 3 holds control characters"),
        (f"h {ed_type} {ed}\n" * 3 + "x" * hostkeys.MAX_KNOWN_HOSTS_CHARS, "more than 65536"),
    ]


@pytest.mark.parametrize("case", range(12))
def test_normalise_refuses_garbage_naming_the_line_and_the_fix(pubkeys, case):
    text, needle = _garbage(pubkeys)[case]
    with pytest.raises(HostKeyError) as err:
        hostkeys.normalise(text, "192.0.2.7", 22)
    assert needle in str(err.value)


def test_normalise_bounds_the_number_of_keys(tmp_path):
    lines = [" ".join(_fields(keygen(tmp_path / f"k{i}", "ed25519"))) for i in range(hostkeys.MAX_KEYS + 1)]
    with pytest.raises(HostKeyError, match="more than 16 keys"):
        hostkeys.normalise("\n".join(f"h {line}" for line in lines), "192.0.2.7", 22)
    assert len(hostkeys.normalise("\n".join(f"h {line}" for line in lines[:-1]), "192.0.2.7", 22).splitlines()) == 16


@pytest.mark.parametrize("address", ["-oProxyCommand=touch /tmp/x", "a b", "999.1.1.1.", ""])
def test_scan_refuses_an_address_before_running_anything(address):
    with pytest.raises(HostKeyError, match="neither an IP address nor a DNS name"):
        hostkeys.scan(address, 22, 1)


def test_fingerprint_format_is_checked():
    assert hostkeys.check_fingerprint("SHA256:" + "A" * 43)
    for bad in ("SHA256:" + "A" * 42, "MD5:aa:bb", "sha256:" + "A" * 43, "SHA256:" + "A" * 43 + "="):
        with pytest.raises(HostKeyError, match="is not a SHA256 fingerprint"):
            hostkeys.check_fingerprint(bad)


def test_changed_message_names_old_new_and_the_command():
    old, new = "SHA256:" + "o" * 43, "SHA256:" + "n" * 43
    msg = hostkeys.changed_message("node-1", [old], [new])
    assert old in msg and new in msg
    assert f"smcpctl host accept-key node-1 {new}" in msg


def _ssh(port: int, known_hosts: Path) -> subprocess.CompletedProcess[str]:
    """A real ssh to the local sshd with only `known_hosts` trusted: the host key is checked before auth."""
    argv = ["ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"]
    argv += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    argv += ["-o", "IdentityFile=/dev/null", "-p", str(port), "127.0.0.1", "true"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_scan_a_real_sshd_gives_lines_ssh_accepts(tmp_path):
    with local_sshd(tmp_path / "sshd") as sshd:
        lines = hostkeys.scan("127.0.0.1", sshd.port, 5)
        assert sorted(hostkeys.fingerprints("\n".join(lines))) == sorted(
            [sshd.fingerprint("ed25519"), sshd.fingerprint("ecdsa")]
        )
        assert all(line.startswith(f"[127.0.0.1]:{sshd.port} ") for line in lines)
        known = tmp_path / "known_hosts"
        known.write_text("\n".join(lines) + "\n")
        trusted = _ssh(sshd.port, known)
        assert "Host key verification failed" not in trusted.stderr
        assert "Permission denied" in trusted.stderr  # past the host key check, refused at user auth
        other = keygen(tmp_path / "other", "ed25519")
        known.write_text(hostkeys.normalise("x " + other.read_text(), "127.0.0.1", sshd.port))
        assert "Host key verification failed" in _ssh(sshd.port, known).stderr


def test_scan_of_a_closed_port_is_a_clear_error():
    port = free_port()
    with pytest.raises(ScanError) as err:
        hostkeys.scan("127.0.0.1", port, 2)
    assert f"127.0.0.1 port {port}: Connection refused" in str(err.value) and not err.value.timeout
