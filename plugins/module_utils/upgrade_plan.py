# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Kubernetes upgrade planning: an ordered, quorum-safe plan or a refusal naming the rule broken.

Pure logic (stdlib only), shared by the module ``upgrade_plan``, the ``upgrade`` role and the
management API (which refuses an upgrade request with the same message before any job starts).

Rules (the Kubernetes version skew policy as kubeadm applies it):

- ``invalid_version``: a version that is not MAJOR.MINOR.PATCH.
- ``unsupported_version``: the target, or a release the plan must pass through, is not in the
  versions table; or the major version changes.
- ``downgrade``: the target is older than a control plane or a kubelet.
- ``kubelet_newer``: a kubelet is a newer minor than the oldest API server.
- ``kubelet_too_old``: a kubelet would end up more than 3 minors older than the API server.
- ``mixed_control_planes``: control planes run different versions, other than the state an
  interrupted hop leaves (some at the hop's version, the rest one step behind).
- ``skipped_minor``: the target is more than one minor ahead and multi-hop is not allowed.

A plan is a list of hops (one minor each; the last one is the target); each hop lists its steps in
order: etcd and containerd first (when the table's release needs a newer minor than installed),
control planes one at a time (``kubeadm upgrade apply`` on the first, ``kubeadm upgrade node`` on the
others), the CNI, then the workers. Hosts already at a hop's version get no step (a re-run after a
failure resumes where it stopped).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

Version = Tuple[int, int, int]

RULES = (
    "invalid_version",
    "unsupported_version",
    "downgrade",
    "kubelet_newer",
    "kubelet_too_old",
    "mixed_control_planes",
    "skipped_minor",
)
MAX_KUBELET_SKEW = 3  # minors a kubelet may trail the API server (Kubernetes >= 1.28)
COMPONENTS = ("etcd", "containerd", "cni")

_STRICT_RE = re.compile(r"^\s*v?(\d+)\.(\d+)\.(\d+)\s*$")
_LOOSE_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
_PERCENT_RE = re.compile(r"^\s*(\d+)\s*%\s*$")


class PlanRefused(ValueError):
    """An upgrade that must not start. ``rule`` is one of RULES; the message names the fix."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message

    def as_dict(self) -> Dict[str, str]:
        return {"rule": self.rule, "message": self.message}


class Table:
    """What planning needs from the versions table: supported releases and what each requires.

    ``requirements(version)`` returns ``{"etcd": "3.6.5", "containerd": "2.1.4", "cni": {"calico": "3.30.3"}}``
    (any key may be missing: no step is planned for it).
    """

    def __init__(self, versions: Sequence[str], requirements: Optional[Callable[[str], Mapping[str, Any]]] = None):
        self.versions = sorted((parse(v) for v in versions))
        self._requirements = requirements

    def supported(self, version: Version) -> bool:
        return version in self.versions

    def newest_patch(self, major: int, minor: int) -> Optional[Version]:
        found = [v for v in self.versions if v[:2] == (major, minor)]
        return found[-1] if found else None

    def requirements(self, version: Version) -> Mapping[str, Any]:
        if self._requirements is None:
            return {}
        return self._requirements(fmt(version)) or {}

    def listing(self) -> str:
        return ", ".join(fmt(v) for v in self.versions) or "(none)"


def default_table() -> Table:
    """The collection's versions table (plugins/module_utils/versions.py)."""
    from ansible_collections.smcp.platform.plugins.module_utils import versions as table

    def requirements(version: str) -> Dict[str, Any]:
        rel = table.release(version)
        files = rel.get("files") or {}
        out: Dict[str, Any] = {}
        for name in ("etcd", "containerd"):
            entry = files.get(name) or {}
            if entry.get("version"):
                out[name] = str(entry["version"])
        cni = {}
        for name, entry in (rel.get("cni") or {}).items():
            if isinstance(entry, Mapping) and entry.get("version"):
                cni[name] = str(entry["version"])
        if cni:
            out["cni"] = cni
        return out

    return Table(table.supported_versions(), requirements)


# ------------------------------------------------------------------ versions
def parse(text: Any, what: str = "version") -> Version:
    """'v1.35.0' or '1.35.0' -> (1, 35, 0); PlanRefused(invalid_version) otherwise."""
    m = _STRICT_RE.match(str(text))
    if not m:
        raise PlanRefused(
            "invalid_version", f"{what} {text!r} is not a Kubernetes version; write MAJOR.MINOR.PATCH such as 1.35.0"
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def parse_loose(text: Any, what: str = "version") -> Version:
    """First MAJOR.MINOR[.PATCH] in a tool's output: 'containerd ... 1.6.20~ds1 ...' -> (1, 6, 20)."""
    m = _LOOSE_RE.search(str(text))
    if not m:
        raise PlanRefused("invalid_version", f"{what} {text!r} holds no version number; give MAJOR.MINOR.PATCH")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def fmt(version: Version) -> str:
    return "%d.%d.%d" % version


def minor_of(version: Version) -> str:
    return "%d.%d" % version[:2]


def _minor_gap(low: Version, high: Version) -> int:
    return high[1] - low[1] if low[0] == high[0] else 1000


# ------------------------------------------------------------------ batches
def batch_sizes(total: int, size: Union[int, str]) -> List[int]:
    """Hosts per batch as Ansible's ``serial`` makes them: an int, or 'N%' of the hosts (at least 1)."""
    per = batch_size(total, size)
    out = []
    left = total
    while left > 0:
        out.append(min(per, left))
        left -= per
    return out


def batch_size(total: int, size: Union[int, str]) -> int:
    """Hosts per batch for ``size`` (int >= 1 or '1%'..'100%'); ValueError naming the fix."""
    if isinstance(size, bool):
        raise ValueError(f"batch size {size!r} is not a number; use a count (2) or a percentage ('20%')")
    if isinstance(size, int) or (isinstance(size, str) and size.strip().isdigit()):
        count = int(size)
        if count < 1:
            raise ValueError(f"batch size {size!r} must be at least 1; use a count (2) or a percentage ('20%')")
        return count
    m = _PERCENT_RE.match(str(size))
    if not m or not 1 <= int(m.group(1)) <= 100:
        raise ValueError(f"batch size {size!r} is neither a count nor a percentage from 1% to 100%; e.g. 2 or '20%'")
    return max(1, total * int(m.group(1)) // 100)


# ------------------------------------------------------------------ plan
def _versions(field: str, values: Mapping[str, Any]) -> Dict[str, Version]:
    return {str(host): parse(v, f"{field}[{host}]") for host, v in sorted(values.items())}


def _lowest(field: str, value: Any) -> Optional[Version]:
    """A component's installed version: one string, or per-host strings (the oldest counts)."""
    if value in (None, "", {}):
        return None
    if isinstance(value, Mapping):
        found = [parse_loose(v, f"{field}[{h}]") for h, v in value.items() if v not in (None, "")]
        return min(found) if found else None
    return parse_loose(value, field)


def _component_steps(
    hop: Version, table: Table, installed: Dict[str, Optional[Version]], cni_name: str
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(steps before the control planes, steps after them) that the hop's release requires."""
    req = table.requirements(hop)
    before: List[Dict[str, Any]] = []
    after: List[Dict[str, Any]] = []
    for name in COMPONENTS:
        wanted = req.get(name)
        if name == "cni":
            wanted = (wanted or {}).get(cni_name) if isinstance(wanted, Mapping) else None
        if not wanted:
            continue
        have = installed.get(name)
        need = parse_loose(wanted, f"versions table {name}")
        if have is None or have[:2] >= need[:2]:
            continue
        step = {"hop": fmt(hop), "kind": name, "from": fmt(have), "to": str(wanted).lstrip("v")}
        if name == "cni":
            step["cni"] = cni_name
        (after if name == "cni" else before).append(step)
        installed[name] = need
    return before, after


def plan(
    target: str,
    control_planes: Mapping[str, Any],
    kubelets: Mapping[str, Any],
    table: Table,
    allow_multi_hop: bool = False,
    etcd: Any = None,
    containerd: Any = None,
    cni: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The ordered upgrade plan to ``target``; raises PlanRefused citing the rule broken.

    ``control_planes``: host -> API server version (the first host in order runs ``upgrade apply``);
    ``kubelets``: host -> kubelet version for every node (control planes included);
    ``etcd``/``containerd``: installed version (or host -> version); ``cni``: {"name", "version"}.
    """
    want = parse(target, "target")
    if not control_planes:
        raise PlanRefused("invalid_version", "control_planes is empty; give every control plane's API server version")
    cps = _versions("control_planes", control_planes)
    kls = _versions("kubelets", kubelets)
    order = [str(h) for h in control_planes]  # caller's order: the first one runs `upgrade apply`
    if not table.supported(want):
        raise PlanRefused(
            "unsupported_version", f"target {fmt(want)} is not in the versions table; use one of {table.listing()}"
        )
    low, high = min(cps.values()), max(cps.values())
    if want[0] != low[0]:
        raise PlanRefused(
            "unsupported_version",
            f"target {fmt(want)} changes the major version from {fmt(low)}; "
            "only minor and patch upgrades are supported",
        )
    newer = sorted(h for h, v in list(cps.items()) + list(kls.items()) if v > want)
    if newer:
        role = "control plane" if newer[0] in cps else "kubelet"
        have = cps.get(newer[0]) or kls[newer[0]]
        raise PlanRefused(
            "downgrade",
            f"target {fmt(want)} is older than {role} {newer[0]} ({fmt(have)}); downgrades are not supported: "
            "choose a target at or above the newest version in the cluster, or restore an etcd backup",
        )
    hops = _hops(low, want, table, allow_multi_hop)
    distinct = sorted(set(cps.values()))
    interrupted = len(distinct) == 2 and high == hops[0]
    if len(distinct) > 1 and not interrupted:
        detail = ", ".join(f"{h}={fmt(v)}" for h, v in sorted(cps.items()))
        raise PlanRefused(
            "mixed_control_planes",
            f"control planes run different versions ({detail}) that no interrupted upgrade explains; "
            f"bring them to one version first (kubeadm upgrade node on the older ones at {fmt(high)})",
        )
    # During an interrupted hop the upgraded control planes' kubelets may already run the hop's version.
    ceiling = high if interrupted else low
    ahead = sorted(h for h, v in kls.items() if v[:2] > ceiling[:2] or (interrupted and v > high))
    if ahead:
        raise PlanRefused(
            "kubelet_newer",
            f"kubelet on {', '.join(ahead)} ({fmt(kls[ahead[0]])}) is newer than the API server "
            f"({fmt(low)} on {min(cps, key=lambda h: (cps[h], h))}); upgrade the control planes first "
            "(or reinstall that kubelet at the API server's version)",
        )
    first_minor = hops[0] if hops else want
    stale = sorted(h for h, v in kls.items() if _minor_gap(v, first_minor) > MAX_KUBELET_SKEW)
    if stale:
        raise PlanRefused(
            "kubelet_too_old",
            f"kubelet on {', '.join(stale)} ({fmt(kls[stale[0]])}) would trail the API server "
            f"{fmt(first_minor)} by more than {MAX_KUBELET_SKEW} minors; "
            f"upgrade those nodes to {minor_of(low)} first or remove them",
        )
    installed = {"etcd": _lowest("etcd", etcd), "containerd": _lowest("containerd", containerd)}
    cni_name = str((cni or {}).get("name") or "")
    installed["cni"] = _lowest("cni", (cni or {}).get("version")) if cni_name else None
    steps: List[Dict[str, Any]] = []
    workers = [h for h in kls if h not in cps]
    cp_now = dict(cps)
    kl_now = dict(kls)
    for hop in hops:
        before, after = _component_steps(hop, table, installed, cni_name)
        steps.extend(before)
        applied = any(v >= hop for v in cp_now.values())
        for host in order:
            kubeadm = None
            if cp_now[host] < hop:
                kubeadm = "node" if applied else "apply"
                applied = True
            kubelet = host in kl_now and kl_now[host] < hop
            if kubeadm or kubelet:
                steps.append(
                    {
                        "hop": fmt(hop),
                        "kind": "control_plane",
                        "host": host,
                        "kubeadm": kubeadm,
                        "kubelet": kubelet,
                        "from": fmt(min(cp_now[host], kl_now.get(host, cp_now[host]))),
                        "to": fmt(hop),
                    }
                )
            cp_now[host] = hop
            if host in kl_now:
                kl_now[host] = hop
        steps.extend(after)
        for host in workers:
            if kl_now[host] < hop:
                steps.append({"hop": fmt(hop), "kind": "node", "host": host, "from": fmt(kl_now[host]), "to": fmt(hop)})
                kl_now[host] = hop
    return {
        "status": "ready" if steps else "at_target",
        "by_hop": by_hop(steps),
        "target": fmt(want),
        "current": {
            "control_planes": {h: fmt(v) for h, v in cps.items()},
            "kubelets": {h: fmt(v) for h, v in kls.items()},
            "oldest_control_plane": fmt(low),
        },
        "hops": [fmt(h) for h in hops if any(s["hop"] == fmt(h) for s in steps)],
        "steps": steps,
        "first_control_plane": next((s["host"] for s in steps if s.get("kubeadm") == "apply"), None),
        "nodes": sorted({s["host"] for s in steps if s["kind"] == "node"}),
    }


def by_hop(steps: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Steps grouped per hop, as the playbook runs them: components, control planes (in order), workers."""
    out: List[Dict[str, Any]] = []
    for step in steps:
        if not out or out[-1]["version"] != step["hop"]:
            out.append({"version": step["hop"], "components": [], "control_planes": [], "nodes": [], "steps": {}})
        group = out[-1]
        if step["kind"] in ("control_plane", "node"):
            group["control_planes" if step["kind"] == "control_plane" else "nodes"].append(step["host"])
            group["steps"][step["host"]] = step
        else:
            group["components"].append(step)
    return out


def _hops(low: Version, want: Version, table: Table, allow_multi_hop: bool) -> List[Version]:
    """Releases to pass through from ``low`` to ``want`` (one minor each, the last one ``want``)."""
    if want <= low:
        return [want]  # at target (or resuming the nodes of a finished control-plane upgrade)
    gap = want[1] - low[1]
    if gap > 1 and not allow_multi_hop:
        raise PlanRefused(
            "skipped_minor",
            f"target {fmt(want)} is {gap} minors ahead of {fmt(low)}; Kubernetes upgrades one minor at a time: "
            f"target {minor_of((low[0], low[1] + 1, 0))}.x first, or allow multi-hop (upgrade_allow_multi_hop: true)",
        )
    hops = []
    for minor in range(low[1] + 1, want[1]):
        step = table.newest_patch(low[0], minor)
        if step is None:
            raise PlanRefused(
                "unsupported_version",
                f"the way from {fmt(low)} to {fmt(want)} passes through {low[0]}.{minor}, which has no release in "
                f"the versions table ({table.listing()}); add one or choose a target one minor ahead",
            )
        hops.append(step)
    return [*hops, want]


def refusal_or_plan(**kwargs: Any) -> Dict[str, Any]:
    """plan(**kwargs), or {"refused": {"rule", "message"}} (for callers that report instead of raising)."""
    try:
        return plan(**kwargs)
    except PlanRefused as exc:
        return {"refused": exc.as_dict()}
