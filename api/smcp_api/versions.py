"""Supported Kubernetes versions: the smcp.platform collection's versions table (plugins/module_utils/versions.py).

A cluster's version (at creation or as an upgrade target) must be a release listed in the table
(exact), because the playbooks install that release's files with its checksums; normalise only
checks the form and the minor.
"""

from __future__ import annotations

import re
from types import ModuleType

from smcp_api import collection

VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def table() -> ModuleType:
    return collection.module_utils("versions")


def supported_versions() -> list[str]:
    return list(table().supported_versions())


def supported_minors() -> list[str]:
    return list(table().supported_minors())


def _parse(version: str) -> tuple[str, str]:
    m = VERSION_RE.match(version.strip())
    if not m:
        raise ValueError(f"'{version}' is not a Kubernetes version; use MAJOR.MINOR.PATCH such as 1.35.0")
    minor = f"{int(m.group(1))}.{int(m.group(2))}"
    return minor, f"{minor}.{int(m.group(3))}"


def normalise(version: str) -> str:
    """'v1.35.0' or '1.35.0' -> '1.35.0' when its minor is supported; raises ValueError naming the fix."""
    minor, full = _parse(version)
    minors = supported_minors()
    if minor not in minors:
        supported = ", ".join(f"{m}.x" for m in minors)
        raise ValueError(f"Kubernetes {version} is not supported; use one of {supported}")
    return full


def exact(version: str) -> str:
    """Like normalise, but the release itself must be in the table (an upgrade target)."""
    full = normalise(version)
    listed = supported_versions()
    if full not in listed:
        same_minor = [v for v in listed if v.rsplit(".", 1)[0] == full.rsplit(".", 1)[0]]
        raise ValueError(
            f"Kubernetes {version} is not in the versions table; use one of {', '.join(same_minor)} "
            f"(every release: {', '.join(listed)})"
        )
    return full
