# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Certificate expiry: parse openssl's answers and kubeconfigs (stdlib only; no PyYAML on the hosts)."""

from __future__ import annotations

import base64
import datetime
import re
from typing import Any, Dict, List, Optional, Tuple

_DATA_RE = re.compile(r"^\s*client-certificate-data:\s*(\S+)\s*$", re.MULTILINE)
_FILE_RE = re.compile(r"^\s*client-certificate:\s*(\S+)\s*$", re.MULTILINE)
_ENDDATE_RE = re.compile(r"^notAfter=(.+)$", re.MULTILINE)
_SUBJECT_RE = re.compile(r"^subject=\s*(.+)$", re.MULTILINE)
_CA_RE = re.compile(r"(^|/)(ca|front-proxy-ca|sa)\.(crt|pem|pub)$")


def parse_openssl(text: str) -> Tuple[datetime.datetime, str]:
    """(notAfter as an aware UTC datetime, subject) from ``openssl x509 -noout -enddate -subject``."""
    m = _ENDDATE_RE.search(text)
    if not m:
        raise ValueError(f"openssl printed no notAfter: {text.strip()[:200]!r}")
    when = datetime.datetime.strptime(m.group(1).strip().replace("  ", " "), "%b %d %H:%M:%S %Y %Z")
    subject = _SUBJECT_RE.search(text)
    return when.replace(tzinfo=datetime.timezone.utc), (subject.group(1).strip() if subject else "")


def kubeconfig_client_certs(text: str) -> List[Dict[str, str]]:
    """Client certificates of a kubeconfig: [{"pem": ...}] for inline data, [{"file": ...}] for paths."""
    out: List[Dict[str, str]] = []
    for data in _DATA_RE.findall(text):
        try:
            out.append({"pem": base64.b64decode(data).decode("ascii", "replace")})
        except ValueError:
            continue
    out.extend({"file": path.strip("'\"")} for path in _FILE_RE.findall(text))
    return out


def is_ca(path: str) -> bool:
    """CA certificates (and the service-account key pair) are not renewed by ``kubeadm certs renew``."""
    return bool(_CA_RE.search(path))


def entry(
    path: str,
    source: str,
    not_after: datetime.datetime,
    subject: str,
    renew_days: int,
    now: Optional[datetime.datetime] = None,
) -> Dict[str, Any]:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    left = (not_after - now).total_seconds() / 86400
    return {
        "path": path,
        "source": source,
        "subject": subject,
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": int(left // 1),
        "expiring": left < renew_days,
        "expired": left < 0,
        "ca": is_ca(path),
    }
