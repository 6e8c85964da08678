"""smcp.platform.etcd_member: list/present/absent, idempotence and check mode, against a fake gateway."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils import etcd
from ansible_collections.smcp.platform.plugins.modules import etcd_member
from test_etcd import FakeEtcd

ENDPOINTS = ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
NEW_PEER = ["https://10.0.0.4:2380"]


def run(fake: FakeEtcd, capsys, check_mode: bool = False, **args) -> dict:
    args = {"endpoints": ENDPOINTS, **args}
    if check_mode:
        args["_ansible_check_mode"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        module = AnsibleModule(
            argument_spec=etcd_member.ARGUMENT_SPEC, required_if=etcd_member.REQUIRED_IF, supports_check_mode=True
        )
        client = etcd.EtcdClient(args["endpoints"], transport=fake)
        etcd_member.execute_module(module, client=client)
    return json.loads(capsys.readouterr().out)


def test_list_reports_health_facts(capsys):
    result = run(FakeEtcd(), capsys)
    assert result["changed"] is False
    assert result["cluster"]["leader"] == "et-1" and result["cluster"]["healthy"]
    assert result["ansible_facts"]["etcd_cluster"]["member_count"] == 3


def test_list_without_a_cluster_says_so(capsys):
    result = run(FakeEtcd(down=set(ENDPOINTS)), capsys)
    assert "failed" not in result and result["cluster"]["exists"] is False


def test_present_adds_once_then_is_idempotent(capsys):
    fake = FakeEtcd()
    first = run(fake, capsys, state="present", name="et-4", peer_urls=NEW_PEER)
    assert first["changed"] and first["member"]["peer_urls"] == NEW_PEER and not first["member"]["started"]
    assert first["initial_cluster"].endswith("et-3=https://10.0.0.3:2380,et-4=https://10.0.0.4:2380")
    second = run(fake, capsys, state="present", name="et-4", peer_urls=NEW_PEER)
    assert second["changed"] is False and second["initial_cluster"] == first["initial_cluster"]
    assert len([c for c in fake.calls if c[1] == "/v3/cluster/member/add"]) == 1


def test_present_in_check_mode_changes_nothing(capsys):
    fake = FakeEtcd()
    result = run(fake, capsys, check_mode=True, state="present", name="et-4", peer_urls=NEW_PEER)
    assert result["changed"] and "et-4=https://10.0.0.4:2380" in result["initial_cluster"]
    assert result["diff"]["after"]["members"][-1]["peer_urls"] == NEW_PEER
    assert not [c for c in fake.calls if c[1] == "/v3/cluster/member/add"]


def test_absent_removes_then_is_idempotent(capsys):
    fake = FakeEtcd()
    first = run(fake, capsys, state="absent", name="et-3")
    assert first["changed"] and first["member"]["name"] == "et-3"
    assert first["cluster"]["member_count"] == 2
    assert run(fake, capsys, state="absent", name="et-3")["changed"] is False


def test_absent_in_check_mode_changes_nothing(capsys):
    fake = FakeEtcd()
    result = run(fake, capsys, check_mode=True, state="absent", name="et-3")
    assert result["changed"] and len(fake.members) == 3


def test_absent_refused_without_quorum(capsys):
    fake = FakeEtcd(down={"https://10.0.0.2:2379"})
    fake.members[1]["clientURLs"] = ["https://10.0.0.2:2379"]
    result = run(fake, capsys, endpoints=["https://10.0.0.1:2379"], state="absent", name="et-3")
    assert result["failed"] and "needed for quorum" in result["msg"] and len(fake.members) == 3


def test_present_without_a_running_cluster_fails_clearly(capsys):
    result = run(FakeEtcd(down=set(ENDPOINTS)), capsys, state="present", name="et-4", peer_urls=NEW_PEER)
    assert result["failed"] and "not running" in result["msg"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"state": "present", "name": "et-4"}, "state is present but all of the following are missing: peer_urls"),
        ({"state": "present", "name": "et-4", "peer_urls": []}, "peer_urls is empty: give the new member's peer URLs"),
        ({"state": "absent"}, "state is absent but any of the following are missing: name, peer_urls"),
    ],
)
def test_a_state_without_the_options_it_needs_fails_before_any_call(capsys, args, message):
    fake = FakeEtcd()
    result = run(fake, capsys, **args)
    assert result["failed"] and message in result["msg"]
    assert fake.calls == []


def test_wait_timeout_fails_on_an_unhealthy_cluster(capsys, monkeypatch):
    monkeypatch.setattr(etcd.time, "sleep", lambda _s: None)
    result = run(FakeEtcd(down={"https://10.0.0.3:2379"}), capsys, wait_timeout=0.01)
    assert result["failed"] and "unhealthy members: et-3" in result["msg"]
