"""Filter smcp.platform.kubeadm_redact: kubeadm output without bootstrap tokens or certificate keys."""

from __future__ import annotations

from ansible_collections.smcp.platform.plugins.filter.redact import FilterModule, kubeadm_redact

TOKEN = "abcdef.0123456789abcdef"
KEY = "0f" * 32


def test_filter_is_registered():
    assert FilterModule().filters()["kubeadm_redact"] is kubeadm_redact


def test_tokens_and_keys_are_replaced_and_the_rest_kept():
    output = f"kubeadm join 10.0.0.1:6443 --token {TOKEN} --certificate-key {KEY}\nerror: preflight failed"
    redacted = kubeadm_redact(output)
    assert TOKEN not in redacted and KEY not in redacted
    assert redacted == "kubeadm join 10.0.0.1:6443 --token <token> --certificate-key <key>\nerror: preflight failed"


def test_only_the_tail_is_kept_and_a_cut_leaves_no_part_of_a_secret():
    assert kubeadm_redact("x" * 50 + f" {TOKEN}", tail=30) == "x" * 22 + " <token>"
    # The cut falls inside the token: no digit of it may survive.
    assert kubeadm_redact(f"{TOKEN}zzzzz", tail=12) == "<token>zzzzz"
    assert kubeadm_redact(f"{TOKEN}zzzzz", tail=10) == "oken>zzzzz"
    assert kubeadm_redact("y" * 3000) == "y" * 2000
    assert kubeadm_redact("y" * 3000, 0) == "y" * 3000


def test_none_is_an_empty_string():
    assert kubeadm_redact(None) == ""
