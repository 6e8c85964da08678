# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""SR-IOV host checks: each PF exists, supports SR-IOV and can provide the VFs asked for."""

from __future__ import annotations

import os

from ansible_collections.smcp.platform.plugins.module_utils.cni import CniError


def _read_int(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return None


def check_pfs(pfs, sysfs="/sys"):
    """Return {pf: {"total_vfs", "num_vfs", "wanted"}}; raise CniError naming every bad PF."""
    state, problems = {}, []
    for pf in pfs:
        name, wanted = pf.get("name"), pf.get("num_vfs")
        if not name:
            problems.append("a PF entry has no name")
            continue
        base = os.path.join(sysfs, "class", "net", name)
        if not os.path.exists(base):
            have = (
                sorted(os.listdir(os.path.join(sysfs, "class", "net")))
                if os.path.isdir(os.path.join(sysfs, "class", "net"))
                else []
            )
            problems.append("PF %s does not exist (interfaces: %s)" % (name, ", ".join(have) or "none"))
            continue
        total = _read_int(os.path.join(base, "device", "sriov_totalvfs"))
        if total is None:
            problems.append(
                "PF %s does not support SR-IOV (no device/sriov_totalvfs; a virtual or non-SR-IOV NIC, "
                "or SR-IOV disabled in the firmware)" % name
            )
            continue
        if not isinstance(wanted, int) or wanted < 1:
            problems.append("PF %s: num_vfs=%r must be an integer >= 1" % (name, wanted))
            continue
        if wanted > total:
            problems.append(
                "PF %s supports %d VFs, %d requested; lower num_vfs to %d or less" % (name, total, wanted, total)
            )
            continue
        current = _read_int(os.path.join(base, "device", "sriov_numvfs")) or 0
        state[name] = {"total_vfs": total, "num_vfs": current, "wanted": wanted}
    if problems:
        raise CniError("SR-IOV preflight failed: " + "; ".join(problems))
    return state
