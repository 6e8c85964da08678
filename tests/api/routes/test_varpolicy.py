"""The variable policy (smcp_api.varpolicy) through the HTTP API: host vars, cluster options, job extra_vars.

Each refusal is a 422 that names the variable, and the refused record is not in the store afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

JINJA = "{{ lookup('pipe', 'id') }}"

# (vars, the variable the message must name, a phrase of the reason)
REFUSED_HOST_VARS = [
    ({"ansible_connection": "local"}, "vars.ansible_connection", "connection, executable and privilege-escalation"),
    ({"ansible_ssh_common_args": "-o IdentitiesOnly=yes"}, "vars.ansible_ssh_common_args", "remove"),
    ({"ansible_ssh_extra_args": "-v"}, "vars.ansible_ssh_extra_args", "remove"),
    ({"ansible_sftp_extra_args": "-v"}, "vars.ansible_sftp_extra_args", "remove"),
    ({"ansible_scp_extra_args": "-v"}, "vars.ansible_scp_extra_args", "remove"),
    ({"ansible_ssh_executable": "/tmp/x"}, "vars.ansible_ssh_executable", "remove"),
    ({"ansible_shell_executable": "/tmp/x"}, "vars.ansible_shell_executable", "remove"),
    ({"ansible_shell_type": "csh"}, "vars.ansible_shell_type", "remove"),
    ({"ansible_become_exe": "/tmp/x"}, "vars.ansible_become_exe", "remove"),
    ({"ansible_become_method": "su"}, "vars.ansible_become_method", "remove"),
    ({"ansible_become_flags": "-s"}, "vars.ansible_become_flags", "remove"),
    ({"ansible_become": False}, "vars.ansible_become", "remove"),
    ({"ansible_ssh_pipelining": True}, "vars.ansible_ssh_pipelining", "remove"),
    ({"ansible_host": "192.0.2.1"}, "vars.ansible_host", "use the host's 'address' field"),
    ({"ansible_python_interpreter": "/tmp/python3"}, "vars.ansible_python_interpreter", "/usr/bin/python3"),
    ({"ansible_python_interpreter": "/usr/bin/python3; id"}, "vars.ansible_python_interpreter", "pattern"),
    ({"smcp_nonsense": 1}, "vars.smcp_nonsense", "not an option of any smcp.platform role"),
    ({"upgrade_host_tasks": "/tmp/evil.yml"}, "vars.upgrade_host_tasks", "code, not data"),
    ({"smcp_kubeconfig": "/etc/cron.d/x"}, "vars.smcp_kubeconfig", "management host"),
    ({"smcp_etcd_group": "all"}, "vars.smcp_etcd_group", "inventory groups"),
    ({"smcp_pod_cidr": "10.1.0.0/16"}, "vars.smcp_pod_cidr", "cluster's 'pod_cidr' field"),
    ({"reset_confirm": True}, "vars.reset_confirm", "params.extra_vars"),
    ({"smcp_sandbox": "yes"}, "vars.smcp_sandbox", "'yes' is not a bool"),
    ({"smcp_node_ip": "ProxyCommand=sh -c id"}, "vars.smcp_node_ip", "'ProxyCommand"),
    ({"host_prep_ntp_servers": ["ok", "-oProxyJump=evil"]}, "vars.host_prep_ntp_servers[1]", "SSH option"),
    ({"host_prep_sysctls": {"a": {"b": "x localcommand=id"}}}, "vars.host_prep_sysctls.a.b", "SSH option"),
]


@pytest.mark.parametrize(("values", "names", "reason"), REFUSED_HOST_VARS)
def test_refused_host_vars_are_422_naming_the_variable_and_not_stored(api, values, names, reason):
    cred = api.credential()
    r = api.post(
        "/api/v1/hosts", json={"name": "h1", "address": "192.0.2.1", "credential_id": cred["id"], "vars": values}
    )
    assert r.status_code == 422, r.text
    assert names in r.text and reason in r.text
    assert api.get("/api/v1/hosts").json() == []


@pytest.mark.parametrize(("values", "names", "reason"), REFUSED_HOST_VARS[::4])
def test_refused_host_vars_on_update_leave_the_host_unchanged(api, values, names, reason):
    cred = api.credential()
    host = api.host("h1", cred["id"], vars={"smcp_sandbox": True})
    r = api.patch(f"/api/v1/hosts/{host['id']}", json={"vars": values})
    assert r.status_code == 422, r.text
    assert names in r.text and reason in r.text
    assert api.get(f"/api/v1/hosts/{host['id']}").json()["vars"] == {"smcp_sandbox": True}


def test_allowed_host_vars_and_jinja_are_stored_as_data(api):
    cred = api.credential()
    values: dict[str, Any] = {
        "smcp_sandbox": True,
        "smcp_node_ip": "192.0.2.5",
        "ansible_python_interpreter": "/usr/local/bin/python3.11",
        "host_prep_hostname": JINJA,
        "host_prep_sysctls": {"net.ipv4.ip_forward": "1", "vm.x": JINJA},
        "node_labels": {"zone": "a"},
    }
    host = api.host("h1", cred["id"], vars=values)
    assert api.get(f"/api/v1/hosts/{host['id']}").json()["vars"] == values
    r = api.patch(f"/api/v1/hosts/{host['id']}", json={"vars": {"smcp_node_ip": "192.0.2.6"}})
    assert r.status_code == 200, r.text
    assert r.json()["vars"] == {"smcp_node_ip": "192.0.2.6"}


@pytest.mark.parametrize(
    ("options", "names", "reason"),
    [
        ({"ansible_ssh_common_args": "-o ProxyCommand=id"}, "options.ansible_ssh_common_args", "remove"),
        ({"ansible_python_interpreter": "/usr/bin/python3"}, "options.ansible_python_interpreter", "per host"),
        ({"smcp_kubernetes_version": "1.34.4"}, "options.smcp_kubernetes_version", "'kubernetes_version' field"),
        ({"smcp_bundle_dir": "/root"}, "options.smcp_bundle_dir", "management host"),
        ({"mgmt_plane_user": "root"}, "options.mgmt_plane_user", "not an option of any smcp.platform role"),
        ({"containerd_config_extra": "x\n  -o ProxyCommand=id"}, "options.containerd_config_extra", "SSH option"),
        ({"cni_sriov_pfs": [{"name": 5}]}, "options.cni_sriov_pfs", "give a list of dict value"),
    ],
)
def test_refused_cluster_options_are_422_and_no_cluster_is_stored(api, options, names, reason):
    cred = api.credential()
    host = api.host("cp1", cred["id"], address="192.0.2.10")
    body = {
        "name": "c1",
        "kubernetes_version": "1.34.4",
        "hosts": [{"host_id": host["id"], "roles": ["etcd", "control_plane", "workers"]}],
        "options": options,
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 422, r.text
    assert names in r.text and reason in r.text
    assert api.get("/api/v1/clusters").json() == []
    assert api.get(f"/api/v1/hosts/{host['id']}").json()["cluster_id"] is None


def test_allowed_cluster_options_with_jinja_are_stored(api):
    cred = api.credential()
    host = api.host("cp1", cred["id"], address="192.0.2.10")
    options = {"smcp_sandbox": True, "containerd_config_extra": JINJA, "cni_mtu": 1400}
    cluster = api.cluster("c1", [host["id"]], options=options)
    assert api.get(f"/api/v1/clusters/{cluster['id']}").json()["options"] == options


@pytest.mark.parametrize(
    ("extra", "names", "reason"),
    [
        ({"ansible_connection": "local"}, "params.extra_vars.ansible_connection", "remove"),
        ({"ansible_become_method": "su"}, "params.extra_vars.ansible_become_method", "remove"),
        ({"ansible_ssh_private_key_file": "/x"}, "params.extra_vars.ansible_ssh_private_key_file", "set by the API"),
        ({"smcp_workers_group": "all"}, "params.extra_vars.smcp_workers_group", "inventory groups"),
        ({"etcd_archive_src": "/var/lib/smcp/api/secret.key"}, "params.extra_vars.etcd_archive_src", "copied"),
        ({"tunnel_user": "root"}, "params.extra_vars.tunnel_user", "not an option of any smcp.platform role"),
        ({"smcp_image_registry": "r -o ProxyCommand=x"}, "params.extra_vars.smcp_image_registry", "SSH option"),
        ({"preflight_extra_ports": ["22"]}, "params.extra_vars.preflight_extra_ports", "is not a list of int"),
    ],
)
def test_refused_extra_vars_are_422_and_no_job_is_recorded(api, extra, names, reason):
    cred = api.credential()
    host = api.host("h1", cred["id"])
    body = {"operation": "preflight", "host_ids": [host["id"]], "params": {"extra_vars": extra}}
    r = api.post("/api/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert names in r.text and reason in r.text
    assert api.get("/api/v1/jobs").json() == []


def test_jinja_extra_vars_and_job_only_options_are_accepted(api):
    cred = api.credential()
    host = api.host("h1", cred["id"])
    extra = {"smcp_image_registry": JINJA, "reset_confirm": True, "preflight_extra_ports": [8080]}
    body = {"operation": "preflight", "host_ids": [host["id"]], "params": {"extra_vars": extra}}
    r = api.post("/api/v1/jobs", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["params"]["extra_vars"] == extra
