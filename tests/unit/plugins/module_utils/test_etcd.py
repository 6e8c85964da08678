"""etcd membership/health parsing and decisions (plugins/module_utils/etcd.py), no host needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible_collections.smcp.platform.plugins.module_utils import etcd

MEMBERS = {
    "header": {"cluster_id": "1", "member_id": "11", "raft_term": "2"},
    "members": [
        {"ID": "11", "name": "et-1", "peerURLs": ["https://10.0.0.1:2380"], "clientURLs": ["https://10.0.0.1:2379"]},
        {"ID": "12", "name": "et-2", "peerURLs": ["https://10.0.0.2:2380"], "clientURLs": ["https://10.0.0.2:2379"]},
        {"ID": "13", "name": "et-3", "peerURLs": ["https://10.0.0.3:2380"], "clientURLs": ["https://10.0.0.3:2379"]},
    ],
}


def status(member_id: str, leader: str = "11") -> dict:
    return {
        "header": {"member_id": member_id, "raft_term": "2"},
        "version": "3.4.23",
        "dbSize": "20480",
        "dbSizeInUse": "16384",
        "leader": leader,
    }


class FakeEtcd:
    """Answers like etcd's gRPC gateway; endpoints in `down` refuse connections."""

    def __init__(self, payload: dict | None = None, down: set[str] | None = None) -> None:
        self.members = [dict(m) for m in (payload or MEMBERS)["members"]]
        self.down = down or set()
        self.calls: list[tuple[str, str, dict | None]] = []
        self.next_id = 20

    def __call__(self, endpoint: str, path: str, body: dict | None) -> dict:
        self.calls.append((endpoint, path, body))
        if endpoint in self.down:
            raise etcd.EtcdError(f"{endpoint}{path}: connection refused")
        if path == "/v3/cluster/member/list":
            return {"members": self.members}
        if path == "/v3/maintenance/status":
            member = next(m for m in self.members if endpoint in m.get("clientURLs", []))
            return status(member["ID"])
        if path == "/health":
            return {"health": "true", "reason": ""}
        if path == "/v3/cluster/member/add":
            new = {"ID": str(self.next_id), "peerURLs": body["peerURLs"]}
            self.members.append(new)
            return {"member": new, "members": self.members}
        if path == "/v3/cluster/member/remove":
            self.members = [m for m in self.members if m["ID"] != body["ID"]]
            return {"members": self.members}
        raise AssertionError(path)


def client(fake: FakeEtcd, endpoints: list[str] | None = None) -> etcd.EtcdClient:
    return etcd.EtcdClient(endpoints or ["https://10.0.0.1:2379", "https://10.0.0.2:2379"], transport=fake)


def test_quorum_and_tolerance():
    assert [etcd.quorum(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]
    assert [etcd.max_down(n) for n in range(1, 8)] == [0, 0, 1, 1, 2, 2, 3]


def test_parse_members_handles_gateway_strings_and_unstarted_members():
    payload = {"members": [*MEMBERS["members"], {"ID": "18446744073709551615", "peerURLs": ["https://10.0.0.4:2380"]}]}
    members = etcd.parse_members(payload)
    assert [m.name for m in members] == ["et-1", "et-2", "et-3", ""]
    unstarted = members[-1]
    assert unstarted.id == 2**64 - 1 and unstarted.hex_id == "ffffffffffffffff"
    assert not unstarted.started and unstarted.client_urls == []


def test_parse_status_and_health():
    st = etcd.parse_status("https://10.0.0.1:2379", status("11", leader="12"))
    assert (st.member_id, st.leader, st.version, st.db_size, st.db_size_in_use) == (11, 12, "3.4.23", 20480, 16384)
    assert etcd.parse_health({"health": "true"}) and etcd.parse_health({"health": True})
    assert not etcd.parse_health({"health": "false", "reason": "RAFT NO LEADER"})


def test_find_member_by_name_then_peer_url():
    members = etcd.parse_members(MEMBERS)
    assert etcd.find_member(members, "et-2", None).id == 12
    assert etcd.find_member(members, "other", ["https://10.0.0.3:2380"]).id == 13
    assert etcd.find_member(members, "et-9", ["https://10.0.0.9:2380"]) is None


def test_initial_cluster_names_the_added_member():
    members = etcd.parse_members(
        {"members": [*MEMBERS["members"], {"ID": "20", "peerURLs": ["https://10.0.0.4:2380"]}]}
    )
    value = etcd.initial_cluster(members, "et-4", ["https://10.0.0.4:2380"])
    assert value == (
        "et-1=https://10.0.0.1:2380,et-2=https://10.0.0.2:2380,et-3=https://10.0.0.3:2380,et-4=https://10.0.0.4:2380"
    )


def test_initial_cluster_refuses_a_second_unstarted_member():
    extra = [{"ID": "20", "peerURLs": ["https://10.0.0.4:2380"]}, {"ID": "21", "peerURLs": ["https://10.0.0.5:2380"]}]
    members = etcd.parse_members({"members": [*MEMBERS["members"], *extra]})
    with pytest.raises(etcd.EtcdError, match="never started"):
        etcd.initial_cluster(members, "et-5", ["https://10.0.0.5:2380"])


def test_check_removal_keeps_quorum():
    members = etcd.parse_members(MEMBERS)
    etcd.check_removal(members, members[2], {11, 12, 13})
    etcd.check_removal(members, members[2], {11, 12})  # 2 of 2 remaining healthy
    with pytest.raises(etcd.EtcdError, match="1 of the remaining 2"):
        etcd.check_removal(members, members[2], {11})
    with pytest.raises(etcd.EtcdError, match="last member"):
        etcd.check_removal(members[:1], members[0], {11})


def test_check_addition_needs_quorum_of_the_grown_cluster():
    members = etcd.parse_members(MEMBERS)
    etcd.check_addition(members, {11, 12, 13})
    with pytest.raises(etcd.EtcdError, match="2 of 3 members are healthy, 3 are needed"):
        etcd.check_addition(members, {11, 12})


def test_summary_reports_leader_versions_and_health():
    fake = FakeEtcd()
    members, summary = client(fake).summary()
    assert summary["exists"] and summary["healthy"] and summary["quorum"]
    assert summary["leader"] == "et-1"
    assert summary["versions"] == ["3.4.23"] and summary["db_size"] == 20480
    assert [m["is_leader"] for m in summary["members"]] == [True, False, False]
    assert len(members) == summary["member_count"] == summary["healthy_count"] == 3


def test_summary_with_one_member_down_keeps_quorum():
    fake = FakeEtcd(down={"https://10.0.0.3:2379"})
    _members, summary = client(fake).summary()
    assert not summary["healthy"] and summary["quorum"]
    assert summary["healthy_count"] == 2
    assert [m["name"] for m in summary["members"] if not m["healthy"]] == ["et-3"]


def test_summary_when_nothing_answers_is_empty_not_an_error():
    fake = FakeEtcd(down={"https://10.0.0.1:2379", "https://10.0.0.2:2379"})
    members, summary = client(fake).summary()
    assert members == [] and summary["exists"] is False and summary["healthy"] is False


def test_first_falls_back_to_the_next_endpoint_and_reports_all_failures():
    fake = FakeEtcd(down={"https://10.0.0.1:2379"})
    endpoint, _payload = client(fake).first("/v3/cluster/member/list", {})
    assert endpoint == "https://10.0.0.2:2379"
    fake.down.add("https://10.0.0.2:2379")
    with pytest.raises(etcd.EtcdError, match=r"no etcd endpoint answered: .*10\.0\.0\.1.*10\.0\.0\.2"):
        client(fake).first("/v3/cluster/member/list", {})


def test_member_add_and_remove_send_gateway_requests():
    fake = FakeEtcd()
    c = client(fake)
    added, members = c.member_add(["https://10.0.0.4:2380"])
    assert added.id == 20 and not added.started and len(members) == 4
    c.member_remove(added)
    assert fake.calls[-1][1:] == ("/v3/cluster/member/remove", {"ID": "20"})
    assert len(c.member_list()) == 3


def test_wait_healthy_times_out_with_the_sick_members():
    fake = FakeEtcd(down={"https://10.0.0.3:2379"})
    ticks = iter(range(100))
    with pytest.raises(etcd.EtcdError, match="unhealthy members: et-3"):
        client(fake).wait_healthy(3, sleep=lambda _s: None, clock=lambda: next(ticks))


def test_wait_healthy_returns_once_healthy():
    fake = FakeEtcd(down={"https://10.0.0.3:2379"})
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.down.clear()

    _members, summary = client(fake).wait_healthy(30, sleep=sleep)
    assert summary["healthy"] and len(slept) == 1


def test_client_requires_endpoints():
    with pytest.raises(etcd.EtcdError, match="no endpoints"):
        etcd.EtcdClient([])
