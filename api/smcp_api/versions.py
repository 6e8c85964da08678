"""Supported Kubernetes versions (one table; the platform's versions table replaces it later)."""

from __future__ import annotations

import re

SUPPORTED_MINORS: dict[str, str] = {"1.34": "1.34.2", "1.35": "1.35.0", "1.36": "1.36.0"}
"""Minor -> newest known patch. Any patch of a supported minor is accepted."""

VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def normalise(version: str) -> str:
    """'v1.34.2' or '1.34.2' -> '1.34.2'; raises ValueError naming the fix."""
    m = VERSION_RE.match(version.strip())
    supported = ", ".join(f"{minor}.x" for minor in SUPPORTED_MINORS)
    if not m:
        raise ValueError(f"'{version}' is not a Kubernetes version; use MAJOR.MINOR.PATCH such as 1.34.2")
    minor = f"{int(m.group(1))}.{int(m.group(2))}"
    if minor not in SUPPORTED_MINORS:
        raise ValueError(f"Kubernetes {version} is not supported; use one of {supported}")
    return f"{minor}.{int(m.group(3))}"
