# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""CNI component versions per Kubernetes minor (Calico, Flannel, Multus, SR-IOV).

Owned by the cni role. The versions table (versions.py) merges this into each release
under the key "cni". Format, per minor ("1.35"):

    {"calico": {"version": "...", "images": {...}}, "flannel": {...}, "multus": {...}, ...}

Every pinned value cites where it came from in a comment.
"""

from __future__ import annotations

CNI_BY_MINOR = {}  # filled by the cni role's work (issue 7)
