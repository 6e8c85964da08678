# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""kubeadm output without secrets: the one place that knows what a bootstrap token and a certificate key look like.

Used by the filter ``smcp.platform.kubeadm_redact`` and the module ``smcp.platform.kubeadm``.
"""

from __future__ import annotations

import re
from typing import Any

# kubeadm prints bootstrap tokens (abcdef.0123456789abcdef) and the certificate key (64 hex digits) that
# uploads the control-plane certificates; either lets a reader join a node to the cluster.
_BOOTSTRAP_TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
_CERTIFICATE_KEY = re.compile(r"[a-f0-9]{64}")


def redact(text: Any, tail: Any = 2000) -> str:
    """The text with tokens and keys replaced, then its last ``tail`` characters (0 keeps it all).

    Redacting before cutting means a cut never leaves part of a secret that the patterns no longer match.
    """
    text = "" if text is None else str(text)
    text = _CERTIFICATE_KEY.sub("<key>", _BOOTSTRAP_TOKEN.sub("<token>", text))
    tail = int(tail)
    return text[-tail:] if tail > 0 else text
