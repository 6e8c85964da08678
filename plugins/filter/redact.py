# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Filter ``smcp.platform.kubeadm_redact`` (roles control_plane, node, upgrade): kubeadm output without secrets."""

from __future__ import annotations

from ansible_collections.smcp.platform.plugins.module_utils.kubeadm_output import redact


def kubeadm_redact(text, tail=2000):
    """The text with tokens and keys replaced, then its last ``tail`` characters (0 keeps it all).

    Redacting before cutting means a cut never leaves part of a secret that the patterns no longer match.
    """
    return redact(text, tail)


class FilterModule(object):
    def filters(self):
        return {"kubeadm_redact": kubeadm_redact}
