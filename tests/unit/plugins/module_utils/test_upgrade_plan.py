"""upgrade_plan: every skew rule, multi-hop, resume, component steps and batch sizes, with a small fake table."""

from __future__ import annotations

import pytest
from ansible_collections.smcp.platform.plugins.module_utils import upgrade_plan as up

REQS = {
    "1.33": {"etcd": "3.5.16", "containerd": "1.7.20"},
    "1.34": {"etcd": "3.5.21", "containerd": "1.7.27", "cni": {"calico": "3.29.3", "flannel": "0.26.7"}},
    "1.35": {"etcd": "3.6.5", "containerd": "2.1.4", "cni": {"calico": "3.30.3", "flannel": "0.27.4"}},
    "1.36": {"etcd": "3.6.6", "containerd": "2.2.0", "cni": {"calico": "3.31.0", "flannel": "0.27.4"}},
}
TABLE = up.Table(
    ["1.33.5", "1.34.0", "1.34.2", "1.35.0", "1.35.1", "1.36.0"],
    lambda v: REQS[".".join(v.split(".")[:2])],
)
BARE = up.Table(["1.34.0", "1.34.2", "1.35.0", "1.35.1", "1.36.0"])  # no component requirements
BARE_WITH_133 = up.Table(["1.33.5", "1.34.2", "1.35.1", "1.36.0"])


def cluster(cp: str = "1.35.0", workers: str = "1.35.0", n_cp: int = 2, n_workers: int = 3):
    cps = {f"cp{i}": cp for i in range(1, n_cp + 1)}
    kls = {**cps, **{f"w{i}": workers for i in range(1, n_workers + 1)}}
    return cps, kls


def refused(rule: str, **kwargs) -> str:
    kwargs.setdefault("table", BARE)
    with pytest.raises(up.PlanRefused) as info:
        up.plan(**kwargs)
    assert info.value.rule == rule, info.value.message
    assert info.value.rule in up.RULES
    return info.value.message


def kinds(result: dict) -> list[tuple]:
    return [(s["hop"], s["kind"], s.get("host"), s.get("kubeadm")) for s in result["steps"]]


# ------------------------------------------------------------------ one hop
def test_one_minor_control_planes_first_then_workers() -> None:
    cps, kls = cluster()
    result = up.plan("1.36.0", cps, kls, BARE)
    assert result["status"] == "ready" and result["hops"] == ["1.36.0"]
    assert kinds(result) == [
        ("1.36.0", "control_plane", "cp1", "apply"),
        ("1.36.0", "control_plane", "cp2", "node"),
        ("1.36.0", "node", "w1", None),
        ("1.36.0", "node", "w2", None),
        ("1.36.0", "node", "w3", None),
    ]
    assert result["first_control_plane"] == "cp1" and result["nodes"] == ["w1", "w2", "w3"]
    assert all(s["kubelet"] for s in result["steps"] if s["kind"] == "control_plane")
    assert {s["from"] for s in result["steps"]} == {"1.35.0"}


def test_first_control_plane_follows_the_callers_order() -> None:
    result = up.plan("1.36.0", {"cpb": "1.35.0", "cpa": "1.35.0"}, {"cpa": "1.35.0", "cpb": "1.35.0"}, BARE)
    assert kinds(result)[:2] == [
        ("1.36.0", "control_plane", "cpb", "apply"),
        ("1.36.0", "control_plane", "cpa", "node"),
    ]


def test_patch_upgrade_is_one_hop() -> None:
    cps, kls = cluster("1.35.0", "1.35.0", 1, 1)
    result = up.plan("v1.35.1", cps, kls, BARE)
    assert result["hops"] == ["1.35.1"] and [s["kind"] for s in result["steps"]] == ["control_plane", "node"]


def test_already_at_target_is_not_a_refusal() -> None:
    cps, kls = cluster("1.36.0", "1.36.0")
    result = up.plan("1.36.0", cps, kls, TABLE, etcd="3.6.6")
    assert result == {**result, "status": "at_target", "steps": [], "hops": [], "first_control_plane": None}


def test_single_node_cluster() -> None:
    result = up.plan("1.36.0", {"solo": "1.35.1"}, {"solo": "1.35.1"}, BARE)
    assert kinds(result) == [("1.36.0", "control_plane", "solo", "apply")] and result["nodes"] == []


# ------------------------------------------------------------------ multi-hop
def test_two_minors_need_multi_hop() -> None:
    cps, kls = cluster("1.34.2", "1.34.2")
    msg = refused("skipped_minor", target="1.36.0", control_planes=cps, kubelets=kls)
    assert "2 minors ahead of 1.34.2" in msg and "1.35.x first" in msg and "upgrade_allow_multi_hop" in msg


def test_multi_hop_passes_through_the_newest_patch_of_each_minor() -> None:
    cps, kls = cluster("1.33.5", "1.33.5", 1, 1)
    result = up.plan("1.36.0", cps, kls, BARE_WITH_133, allow_multi_hop=True)
    assert result["hops"] == ["1.34.2", "1.35.1", "1.36.0"]
    assert kinds(result) == [
        ("1.34.2", "control_plane", "cp1", "apply"),
        ("1.34.2", "node", "w1", None),
        ("1.35.1", "control_plane", "cp1", "apply"),
        ("1.35.1", "node", "w1", None),
        ("1.36.0", "control_plane", "cp1", "apply"),
        ("1.36.0", "node", "w1", None),
    ]
    assert [s["from"] for s in result["steps"] if s["kind"] == "node"] == ["1.33.5", "1.34.2", "1.35.1"]
    assert [(h["version"], h["control_planes"], h["nodes"]) for h in result["by_hop"]] == [
        ("1.34.2", ["cp1"], ["w1"]),
        ("1.35.1", ["cp1"], ["w1"]),
        ("1.36.0", ["cp1"], ["w1"]),
    ]


def test_multi_hop_through_a_minor_missing_from_the_table_is_refused() -> None:
    table = up.Table(["1.33.5", "1.35.1", "1.36.0"])
    cps, kls = cluster("1.33.5", "1.33.5")
    msg = refused(
        "unsupported_version", target="1.35.1", control_planes=cps, kubelets=kls, table=table, allow_multi_hop=True
    )
    assert "passes through 1.34" in msg


# ------------------------------------------------------------------ refusals
def test_downgrade_is_refused() -> None:
    cps, kls = cluster("1.35.1", "1.35.1")
    msg = refused("downgrade", target="1.35.0", control_planes=cps, kubelets=kls)
    assert "older than control plane cp1 (1.35.1)" in msg and "downgrades are not supported" in msg
    refused("downgrade", target="1.34.2", control_planes=cps, kubelets=kls)


def test_downgrade_below_a_kubelet_is_refused() -> None:
    msg = refused(
        "downgrade", target="1.35.0", control_planes={"cp1": "1.35.0"}, kubelets={"cp1": "1.35.0", "w1": "1.35.1"}
    )
    assert "kubelet w1 (1.35.1)" in msg


def test_kubelet_newer_than_the_api_server_is_refused() -> None:
    msg = refused(
        "kubelet_newer", target="1.36.0", control_planes={"cp1": "1.35.0"}, kubelets={"cp1": "1.35.0", "w1": "1.36.0"}
    )
    assert "kubelet on w1 (1.36.0) is newer than the API server (1.35.0 on cp1)" in msg


def test_kubelet_newer_patch_same_minor_is_allowed() -> None:
    result = up.plan("1.35.1", {"cp1": "1.35.0"}, {"cp1": "1.35.0", "w1": "1.35.1"}, BARE)
    assert kinds(result) == [("1.35.1", "control_plane", "cp1", "apply")]


def test_kubelet_too_old_is_refused() -> None:
    table = up.Table(["1.31.0", "1.32.0", "1.35.0", "1.36.0"])
    msg = refused(
        "kubelet_too_old",
        target="1.36.0",
        control_planes={"cp1": "1.35.0"},
        kubelets={"cp1": "1.35.0", "w1": "1.32.0"},
        table=table,
    )
    assert "w1 (1.32.0)" in msg and "more than 3 minors" in msg
    ok = up.plan("1.36.0", {"cp1": "1.35.0"}, {"cp1": "1.35.0", "w1": "1.33.0"}, table)
    assert ok["nodes"] == ["w1"]


def test_unsupported_target_is_refused() -> None:
    cps, kls = cluster()
    msg = refused("unsupported_version", target="1.36.9", control_planes=cps, kubelets=kls)
    assert "not in the versions table" in msg and "1.36.0" in msg


def test_major_change_is_refused() -> None:
    table = up.Table(["1.35.0", "2.0.0"])
    msg = refused("unsupported_version", target="2.0.0", control_planes={"cp1": "1.35.0"}, kubelets={}, table=table)
    assert "major version" in msg


@pytest.mark.parametrize("bad", ["1.35", "latest", "1.35.0-rc.1", "", "v1.x.0"])
def test_invalid_versions_are_refused(bad: str) -> None:
    refused("invalid_version", target=bad, control_planes={"cp1": "1.35.0"}, kubelets={})
    msg = refused("invalid_version", target="1.36.0", control_planes={"cp1": bad or "?"}, kubelets={})
    assert "control_planes[cp1]" in msg


def test_no_control_planes_is_refused() -> None:
    refused("invalid_version", target="1.36.0", control_planes={}, kubelets={"w1": "1.35.0"})


def test_mixed_control_planes_are_refused() -> None:
    msg = refused(
        "mixed_control_planes", target="1.36.0", control_planes={"cp1": "1.35.0", "cp2": "1.35.1"}, kubelets={}
    )
    assert "cp1=1.35.0, cp2=1.35.1" in msg
    refused(
        "mixed_control_planes",
        target="1.36.0",
        control_planes={"a": "1.35.0", "b": "1.36.0", "c": "1.35.1"},
        kubelets={},
    )


def test_mixed_two_minors_apart_is_refused() -> None:
    refused(
        "mixed_control_planes",
        target="1.36.0",
        control_planes={"cp1": "1.34.2", "cp2": "1.36.0"},
        kubelets={},
        allow_multi_hop=True,
    )


# ------------------------------------------------------------------ resume
def test_resume_after_the_first_control_plane() -> None:
    cps = {"cp1": "1.36.0", "cp2": "1.35.0", "cp3": "1.35.0"}
    kls = {"cp1": "1.36.0", "cp2": "1.35.0", "cp3": "1.35.0", "w1": "1.35.0"}
    result = up.plan("1.36.0", cps, kls, BARE)
    assert kinds(result) == [
        ("1.36.0", "control_plane", "cp2", "node"),
        ("1.36.0", "control_plane", "cp3", "node"),
        ("1.36.0", "node", "w1", None),
    ]
    assert result["first_control_plane"] is None


def test_resume_when_apply_ran_but_the_kubelet_did_not() -> None:
    cps = {"cp1": "1.36.0", "cp2": "1.35.0"}
    kls = {"cp1": "1.35.0", "cp2": "1.35.0"}
    result = up.plan("1.36.0", cps, kls, BARE)
    assert [(s["host"], s["kubeadm"], s["kubelet"]) for s in result["steps"]] == [
        ("cp1", None, True),
        ("cp2", "node", True),
    ]


def test_resume_with_some_workers_done() -> None:
    cps = {"cp1": "1.36.0"}
    kls = {"cp1": "1.36.0", "w1": "1.36.0", "w2": "1.35.0", "w3": "1.35.1"}
    result = up.plan("1.36.0", cps, kls, BARE)
    assert result["nodes"] == ["w2", "w3"] and [s["kind"] for s in result["steps"]] == ["node", "node"]


def test_resume_of_an_interrupted_patch_upgrade() -> None:
    result = up.plan("1.35.1", {"cp1": "1.35.1", "cp2": "1.35.0"}, {"cp1": "1.35.1", "cp2": "1.35.0"}, BARE)
    assert [(s["host"], s["kubeadm"]) for s in result["steps"]] == [("cp2", "node")]


def test_resume_mid_multi_hop() -> None:
    cps = {"cp1": "1.35.1", "cp2": "1.34.2"}
    kls = {"cp1": "1.35.1", "cp2": "1.34.2", "w1": "1.34.2"}
    result = up.plan("1.36.0", cps, kls, BARE, allow_multi_hop=True)
    assert kinds(result) == [
        ("1.35.1", "control_plane", "cp2", "node"),
        ("1.35.1", "node", "w1", None),
        ("1.36.0", "control_plane", "cp1", "apply"),
        ("1.36.0", "control_plane", "cp2", "node"),
        ("1.36.0", "node", "w1", None),
    ]


def test_interrupted_hop_kubelet_beyond_it_is_refused() -> None:
    refused(
        "kubelet_newer",
        target="1.37.0",
        control_planes={"cp1": "1.36.0", "cp2": "1.35.0"},
        kubelets={"cp1": "1.36.0", "w1": "1.37.0"},
        table=up.Table(["1.35.0", "1.36.0", "1.37.0"]),
        allow_multi_hop=True,
    )


# ------------------------------------------------------------------ components
def test_component_steps_where_the_table_requires_them() -> None:
    cps, kls = cluster("1.34.2", "1.34.2", 1, 1)
    result = up.plan(
        "1.35.1",
        cps,
        kls,
        TABLE,
        etcd="3.5.21",
        containerd={"cp1": "1.7.27", "w1": "containerd 1.7.27~ds1"},
        cni={"name": "calico", "version": "v3.29.3"},
    )
    assert [(s["kind"], s.get("from"), s.get("to")) for s in result["steps"]] == [
        ("etcd", "3.5.21", "3.6.5"),
        ("containerd", "1.7.27", "2.1.4"),
        ("control_plane", "1.34.2", "1.35.1"),
        ("cni", "3.29.3", "3.30.3"),
        ("node", "1.34.2", "1.35.1"),
    ]
    assert result["steps"][3]["cni"] == "calico"


def test_component_patch_differences_need_no_step() -> None:
    cps, kls = cluster("1.35.0", "1.35.0", 1, 0)
    result = up.plan(
        "1.36.0",
        cps,
        kls,
        TABLE,
        etcd="3.6.5",
        containerd={"cp1": "2.2.1"},
        cni={"name": "flannel", "version": "0.27.4"},
    )
    assert [s["kind"] for s in result["steps"]] == ["control_plane"]


def test_component_steps_once_across_hops() -> None:
    cps, kls = cluster("1.33.5", "1.33.5", 1, 0)
    result = up.plan("1.36.0", cps, kls, TABLE, allow_multi_hop=True, etcd="3.5.16", containerd={"cp1": "1.7.20"})
    etcd = [(s["hop"], s["to"]) for s in result["steps"] if s["kind"] == "etcd"]
    assert etcd == [("1.35.1", "3.6.5")]
    ctr = [(s["hop"], s["to"]) for s in result["steps"] if s["kind"] == "containerd"]
    assert ctr == [("1.35.1", "2.1.4"), ("1.36.0", "2.2.0")]


def test_unknown_components_are_not_checked() -> None:
    cps, kls = cluster("1.34.2", "1.34.2", 1, 1)
    result = up.plan("1.35.1", cps, kls, TABLE)
    assert [s["kind"] for s in result["steps"]] == ["control_plane", "node"]


def test_the_oldest_containerd_counts() -> None:
    cps, kls = cluster("1.35.0", "1.35.0", 1, 1)
    result = up.plan("1.36.0", cps, kls, TABLE, containerd={"cp1": "2.2.0", "w1": "1.7.27"})
    assert (result["steps"][0]["kind"], result["steps"][0]["from"]) == ("containerd", "1.7.27")


def test_refusal_or_plan_reports() -> None:
    out = up.refusal_or_plan(target="1.34.0", control_planes={"cp1": "1.35.0"}, kubelets={}, table=BARE)
    assert out["refused"]["rule"] == "downgrade"


# ------------------------------------------------------------------ parsing and batches
def test_parse_and_parse_loose() -> None:
    assert up.parse("v1.35.0") == (1, 35, 0) and up.fmt((1, 35, 0)) == "1.35.0"
    assert up.parse_loose("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1") == (1, 6, 20)
    assert up.parse_loose("3.4") == (3, 4, 0)
    with pytest.raises(up.PlanRefused):
        up.parse_loose("none")


@pytest.mark.parametrize(
    ("total", "size", "expected"),
    [
        (10, "20%", [2, 2, 2, 2, 2]),
        (3, "20%", [1, 1, 1]),
        (7, 3, [3, 3, 1]),
        (5, "100%", [5]),
        (4, "3", [3, 1]),
        (9, " 50 % ", [4, 4, 1]),
        (0, 2, []),
    ],
)
def test_batch_sizes_match_ansible_serial(total: int, size, expected: list[int]) -> None:
    assert up.batch_sizes(total, size) == expected


@pytest.mark.parametrize("size", [0, -1, "0%", "101%", "abc", True, "2.5"])
def test_bad_batch_sizes_are_refused(size) -> None:
    with pytest.raises(ValueError, match="batch size"):
        up.batch_size(10, size)
