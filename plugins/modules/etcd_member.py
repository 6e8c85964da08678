#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: etcd_member
short_description: List, add and remove etcd cluster members; report cluster health
version_added: 0.1.0
description:
  - Talks to an etcd v3 cluster through its gRPC gateway over HTTPS with a client certificate
    (no etcdctl needed) and returns the members with their health, version, DB size and the leader.
  - O(state=present) adds a member by its peer URLs unless a member with that name or peer URL exists
    (an added member that has not started yet counts as present). O(state=absent) removes it.
  - Membership changes are refused when they would leave the cluster without quorum.
author:
  - smcp developers (@smcp)
options:
  state:
    description:
      - V(query) only lists the members and reports health (the C(list) operation; ansible-test
        reserves the word C(list)); V(present) adds the member; V(absent) removes it.
    type: str
    choices: [query, present, absent]
    default: query
  endpoints:
    description:
      - Client URLs to reach the cluster (C(https://10.0.0.1:2379)). The first that answers is used.
    type: list
    elements: str
    required: true
  name:
    description:
      - Member name (etcd C(--name)). Required for O(state=present) and O(state=absent)
        unless O(peer_urls) identifies the member.
    type: str
  peer_urls:
    description:
      - Peer URLs of the member. Required for O(state=present).
    type: list
    elements: str
  ca_file:
    description: CA certificate that signed the etcd server certificates.
    type: path
  client_cert_file:
    description: Client certificate presented to etcd.
    type: path
  client_key_file:
    description: Key of O(client_cert_file).
    type: path
  timeout:
    description: Seconds to wait for each HTTP request.
    type: float
    default: 3
  wait_timeout:
    description:
      - Seconds to wait until every member is healthy and there is one leader before reporting
        (and after a change). V(0) reports at once without failing on an unhealthy cluster.
    type: float
    default: 0
attributes:
  check_mode:
    support: full
    description: Reports whether a member would be added or removed without changing the cluster.
  diff_mode:
    support: full
    description: Returns the member names and peer URLs before and after.
notes:
  - Use O(state=query) against all known client URLs to detect whether a cluster runs at all;
    RV(cluster.exists) is V(false) when no endpoint answers.
seealso:
  - name: etcd runtime reconfiguration
    description: How members are added and removed.
    link: https://etcd.io/docs/v3.4/op-guide/runtime-configuration/
"""

EXAMPLES = r"""
- name: Report cluster health
  smcp.platform.etcd_member:
    endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]
    ca_file: /etc/etcd/pki/ca.crt
    client_cert_file: /etc/etcd/pki/client.crt
    client_key_file: /etc/etcd/pki/client.key
  register: etcd

- name: Add etcd4 (then start it with initial-cluster-state=existing)
  smcp.platform.etcd_member:
    state: present
    name: etcd4
    peer_urls: [https://10.0.0.4:2380]
    endpoints: [https://10.0.0.1:2379]
    ca_file: /etc/etcd/pki/ca.crt
    client_cert_file: /etc/etcd/pki/client.crt
    client_key_file: /etc/etcd/pki/client.key
  register: added

- name: Remove etcd4
  smcp.platform.etcd_member:
    state: absent
    name: etcd4
    endpoints: [https://10.0.0.1:2379]
    ca_file: /etc/etcd/pki/ca.crt
    client_cert_file: /etc/etcd/pki/client.crt
    client_key_file: /etc/etcd/pki/client.key
"""

RETURN = r"""
cluster:
  description: Members and health after the change (before it in check mode).
  returned: always
  type: dict
  contains:
    exists:
      description: Whether any endpoint answered with a member list.
      type: bool
    healthy:
      description: Every member healthy and exactly one leader.
      type: bool
    quorum:
      description: Enough healthy members to accept writes.
      type: bool
    leader:
      description: Name of the leader (empty when there is none or no agreement).
      type: str
    members:
      description:
        - One entry per member with id, name, peer_urls, client_urls, started, healthy,
          version, db_size, db_size_in_use and is_leader.
      type: list
      elements: dict
    member_count:
      description: Number of members.
      type: int
    healthy_count:
      description: Number of healthy members.
      type: int
    versions:
      description: Distinct server versions.
      type: list
      elements: str
    db_size:
      description: Largest backend database size in bytes.
      type: int
  sample:
    exists: true
    healthy: true
    quorum: true
    leader: etcd1
    member_count: 3
    healthy_count: 3
    versions: ["3.4.23"]
    db_size: 20480
    members:
      - id: 8e9e05c52164694d
        name: etcd1
        peer_urls: ["https://10.0.0.1:2380"]
        client_urls: ["https://10.0.0.1:2379"]
        started: true
        is_learner: false
        healthy: true
        version: 3.4.23
        db_size: 20480
        db_size_in_use: 16384
        is_leader: true
member:
  description: The member added, found or removed.
  returned: state is present or absent and the member exists or was added
  type: dict
  sample:
    id: 8e9e05c52164694d
    name: etcd4
    peer_urls: ["https://10.0.0.4:2380"]
    client_urls: []
    started: false
    is_learner: false
initial_cluster:
  description: The C(--initial-cluster) value the added member must start with (C(initial-cluster-state=existing)).
  returned: state is present
  type: str
  sample: etcd1=https://10.0.0.1:2380,etcd4=https://10.0.0.4:2380
ansible_facts:
  description: Facts set by the module.
  returned: always
  type: dict
  contains:
    etcd_cluster:
      description: Same as RV(cluster).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.etcd import (  # noqa: E402
    EtcdClient,
    EtcdError,
    Member,
    check_addition,
    check_removal,
    find_member,
    initial_cluster,
)

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["query", "present", "absent"], default="query"),
    endpoints=dict(type="list", elements="str", required=True),
    name=dict(type="str"),
    peer_urls=dict(type="list", elements="str"),
    ca_file=dict(type="path"),
    client_cert_file=dict(type="path"),
    client_key_file=dict(type="path"),
    timeout=dict(type="float", default=3),
    wait_timeout=dict(type="float", default=0),
)
# Which options a state needs; AnsibleModule refuses a task without them before any call.
REQUIRED_IF = [
    ("state", "present", ("peer_urls",)),
    ("state", "absent", ("name", "peer_urls"), True),
]


def _view(members):
    return [{"name": m.name, "peer_urls": m.peer_urls} for m in members]


def execute_module(module, client=None):
    params = module.params
    state = params["state"]
    if state == "present" and params["peer_urls"] == []:
        module.fail_json(msg="peer_urls is empty: give the new member's peer URLs (e.g. [https://10.0.0.4:2380])")
    try:
        client = client or EtcdClient(
            params["endpoints"],
            ca_file=params["ca_file"],
            cert_file=params["client_cert_file"],
            key_file=params["client_key_file"],
            timeout=params["timeout"],
        )
    except (EtcdError, OSError) as exc:
        module.fail_json(msg=f"cannot set up the etcd client (ca_file/client_cert_file/client_key_file): {exc}")

    try:
        if params["wait_timeout"] > 0:
            members, summary = client.wait_healthy(params["wait_timeout"])
        else:
            members, summary = client.summary()
    except EtcdError as exc:
        module.fail_json(msg=str(exc), endpoints=params["endpoints"])

    result = dict(changed=False, cluster=summary, ansible_facts=dict(etcd_cluster=summary))
    if state == "query":
        module.exit_json(**result)
    if not summary["exists"]:
        module.fail_json(
            msg=f"no etcd endpoint answered ({', '.join(params['endpoints'])}): cannot change membership "
            "of a cluster that is not running",
            **result,
        )

    before = _view(members)
    target = find_member(members, params["name"], params["peer_urls"])
    healthy_ids = {int(m["id"], 16) for m in summary["members"] if m["healthy"]}
    try:
        if state == "present":
            if target is None:
                check_addition(members, healthy_ids)
                result["changed"] = True
                if not module.check_mode:
                    target, members = client.member_add(params["peer_urls"])
                else:
                    members = [*members, Member(id=0, name="", peer_urls=sorted(params["peer_urls"]))]
            elif sorted(params["peer_urls"]) != target.peer_urls:
                result["changed"] = True
                if not module.check_mode:
                    client.member_update(target, params["peer_urls"])
                target.peer_urls = sorted(params["peer_urls"])
            if target is not None:
                result["member"] = target.as_dict()
            result["initial_cluster"] = initial_cluster(members, params["name"] or "", params["peer_urls"])
        elif target is not None:
            check_removal(members, target, healthy_ids)
            result["changed"] = True
            result["member"] = target.as_dict()
            if not module.check_mode:
                client.member_remove(target)
            members = [m for m in members if m.id != target.id]
    except EtcdError as exc:
        module.fail_json(msg=str(exc), **result)

    if result["changed"]:
        result["diff"] = dict(before=dict(members=before), after=dict(members=_view(members)))
        if not module.check_mode:
            try:
                _members, summary = client.summary()
            except EtcdError:  # the summary above already worked; keep the old one
                pass
            result["cluster"] = summary
            result["ansible_facts"] = dict(etcd_cluster=summary)
    module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
