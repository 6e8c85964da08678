# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Filters ``smcp.platform.kube_artifacts_plan`` and ``smcp.platform.kube_artifacts_needed`` (role kube_artifacts)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.smcp.platform.plugins.module_utils.artifact_fetch import ArtifactError
from ansible_collections.smcp.platform.plugins.module_utils.kube_artifacts import needed, plan


def kube_artifacts_plan(release, arch, files, source="upstream", checksums=None, manifest=None, **kwargs):
    """Items to fetch and install for one host; fails on bad input before any change."""
    try:
        return plan(release, arch, files=files, source=source, checksums=checksums, manifest=manifest, **kwargs)
    except (ArtifactError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"kube_artifacts_plan: {exc}") from exc


def kube_artifacts_needed(items, probe):
    """The items of a plan the host does not have yet."""
    try:
        return needed(items, probe or {})
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError(f"kube_artifacts_needed: {exc}") from exc


class FilterModule(object):
    def filters(self):
        return {"kube_artifacts_plan": kube_artifacts_plan, "kube_artifacts_needed": kube_artifacts_needed}
