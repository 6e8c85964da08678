"""The mgmt_plane role's high-availability layout (mgmt_plane_ha) on the controller.

The role's own checks run for real (tag mgmt_plane_preflight on local hosts: nothing is installed); the files
the HA phases write are rendered from the role's templates with its defaults and vars, three hosts whose
probes (host name, interface, the first host's generated secrets) are given as host variables. The live
layout, with faults injected, is the molecule scenario mgmt_plane_ha.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

from tests.ansible_run import run_play

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "mgmt_plane"
ADDRS = {"m1": "192.0.2.5", "m2": "192.0.2.6", "m3": "192.0.2.7"}
VIP = "192.0.2.250"
SECRETS = {"db": "db-pw-0123", "broker": "mq-pw-4567", "cookie": "cookie-89ab"}


def _inventory(hosts: dict[str, str], **host_vars: Any) -> dict[str, Any]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {
        "all": {
            "children": {
                "mgmt_plane": {
                    "hosts": {
                        name: {
                            **local,
                            "ansible_host": addr,
                            "_mgmt_plane_hostname": {"stdout": f"{name}-short"},
                            "_mgmt_plane_iface_probe": {"stdout": f"2: eth0    inet {addr}/24 brd ..."},
                            **host_vars,
                        }
                        for name, addr in hosts.items()
                    }
                }
            }
        }
    }


def _preflight(tmp_path: Path, hosts: dict[str, str], **extra: object) -> str:
    tmp_path.mkdir()
    play = [{"hosts": "mgmt_plane", "gather_facts": False, "roles": ["smcp.platform.mgmt_plane"]}]
    result = run_play(
        tmp_path,
        play,
        "--tags",
        "mgmt_plane_preflight",
        inventory=_inventory(hosts),
        extra_vars={"mgmt_plane_ha": True, **extra},
    )
    return f"rc={result.returncode}\n{result.stdout}"


def _render(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Per host: api.env, worker.env, haproxy.cfg, keepalived.conf, prometheus.yml, nginx site."""
    out = tmp_path / "out"
    out.mkdir()
    names = ["api.env.j2", "worker.env.j2", "haproxy.cfg.j2", "keepalived.conf.j2", "prometheus.yml.j2"]
    names += ["nginx-site.conf.j2", "rabbitmq.conf.j2"]
    tasks = [
        {
            "ansible.builtin.copy": {
                "content": "{{ lookup('ansible.builtin.template', '%s') }}" % (ROLE / "templates" / name),
                "dest": f"{out}/{{{{ inventory_hostname }}}}-{name.removesuffix('.j2')}",
                "mode": "0600",
            }
        }
        for name in names
    ]
    slurp = {
        "results": [{"content": base64.b64encode(SECRETS[k].encode()).decode()} for k in ("db", "broker", "cookie")]
    }
    play = [
        {
            "hosts": "mgmt_plane",
            "gather_facts": False,
            "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
            "tasks": tasks,
        }
    ]
    result = run_play(
        tmp_path,
        play,
        inventory=_inventory(ADDRS, _mgmt_plane_ha_slurp=slurp),
        extra_vars={"mgmt_plane_ha": True, "mgmt_plane_vip": VIP, "mgmt_plane_api_source": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    files: dict[str, dict[str, str]] = {h: {} for h in ADDRS}
    for p in out.iterdir():
        host, name = p.name.split("-", 1)
        files[host][name] = p.read_text()
    return files


def _env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_ha_needs_three_hosts_and_a_free_vip(tmp_path: Path) -> None:
    one = _preflight(tmp_path / "one", {"m1": "192.0.2.5"}, mgmt_plane_vip=VIP)
    assert one.startswith("rc=2"), one[-2000:]
    assert "mgmt_plane_ha=true needs an odd number of hosts, at least 3, in group 'mgmt_plane' (it has 1: m1)" in one
    taken = _preflight(tmp_path / "taken", ADDRS, mgmt_plane_vip="192.0.2.6")
    assert taken.startswith("rc=2"), taken[-2000:]
    assert "mgmt_plane_vip='192.0.2.6' is not an unused IPv4 address" in taken
    good = _preflight(tmp_path / "good", ADDRS, mgmt_plane_vip=VIP)
    assert good.startswith("rc=0"), good[-3000:]


def test_ha_layout_files(tmp_path: Path) -> None:
    files = _render(tmp_path)
    for host, addr in ADDRS.items():
        api, worker = _env(files[host]["api.env"]), _env(files[host]["worker.env"])
        # Every RabbitMQ node over TLS, this host's own first; the CA checks the broker's certificate.
        # The same order on every run (a set-ordered list rewrote the env files at each run: not idempotent).
        order = [addr] + [a for a in ADDRS.values() if a != addr]
        assert api["SMCP_BROKER_URL"].split(";") == [f"amqps://smcp:mq-pw-4567@{a}:5671/smcp" for a in order]
        assert api["SSL_CERT_FILE"] == "/etc/smcp/ca.crt"
        assert worker["SMCP_BROKER_URL"] == api["SMCP_BROKER_URL"]
        # PostgreSQL on the first host only: the others reach it with TLS checked against the CA.
        if host == "m1":
            assert api["SMCP_DB_URL"] == "postgresql://smcp-api@/smcp?host=/var/run/postgresql"
        else:
            assert api["SMCP_DB_URL"] == (
                "postgresql://smcp-api:db-pw-0123@192.0.2.5:5432/smcp?sslmode=verify-full&sslrootcert=/etc/smcp/ca.crt"
            )
        haproxy = files[host]["haproxy.cfg"]
        assert f"bind {VIP}:443" in haproxy
        assert [line.split()[1:3] for line in haproxy.splitlines() if line.strip().startswith("server ")] == [
            [name, f"{a}:443"] for name, a in ADDRS.items()
        ]
        keepalived = files[host]["keepalived.conf"]
        assert f"priority {200 - list(ADDRS).index(host)}" in keepalived
        assert f"unicast_src_ip {addr}" in keepalived
        assert f"{VIP}/32 dev eth0" in keepalived
        assert all((a in keepalived) == (a != addr) for a in ADDRS.values() if a != addr)
        nginx = files[host]["nginx-site.conf"]
        assert f"listen {addr}:443 ssl;" in nginx and "listen 127.0.0.1:443 ssl;" in nginx
        assert "listen 443 ssl;" not in nginx
        prometheus = files[host]["prometheus.yml"]
        for a in ADDRS.values():
            assert f'"{a}:443"' in prometheus and f'"{a}:15692"' in prometheus
        assert "listeners.tcp = none" in files[host]["rabbitmq.conf"]
