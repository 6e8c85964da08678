# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Prometheus file_sd targets for smcp clusters, from an Ansible inventory or from the smcp API.

Pure standard library: the filter plugin ``smcp.platform.monitoring_targets`` uses it on the
controller, and the role ``monitoring`` installs this very file (plus a two-line entry point) on
the management host, where a systemd timer runs it against ``GET /api/v1/hosts`` and
``GET /api/v1/clusters`` and rewrites the ``api-*.json`` target files.

Target files (one per scrape job and source) hold one entry per host:
``{"targets": ["10.0.0.5:9100"], "labels": {"node": "cp1", "cluster": "prod", "source": "inventory"}}``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import tempfile
from http.client import HTTPConnection, HTTPSConnection
from urllib.parse import urlsplit

JOBS = ("node", "etcd", "kube-apiserver", "kubelet")
NODE_EXPORTER_PORT = 9100
KUBELET_PORT = 10250
APISERVER_PORT = 6443
ETCD_METRICS_DEFAULT = ("http://127.0.0.1:2381",)
# Host variables build_targets reads.
HOST_KEYS = (
    "monitoring_scrape_address",
    "smcp_node_ip",
    "ansible_host",
    "smcp_cluster_name",
    "monitoring_node_exporter_port",
    "etcd_listen_metrics_urls",
    "smcp_apiserver_port",
)
GROUP_DEFAULTS = {"etcd": "etcd", "control_plane": "control_plane", "workers": "workers"}


class TargetError(ValueError):
    """Input that cannot be turned into targets; the message names the field, the value and the fix."""


def _host_only(address):
    """'10.0.0.5' -> '10.0.0.5', 'fd00::5' -> '[fd00::5]' (for host:port)."""
    text = str(address).strip()
    try:
        if ipaddress.ip_address(text.strip("[]")).version == 6:
            return "[%s]" % text.strip("[]")
    except ValueError:
        pass
    return text


def _is_loopback(host):
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def etcd_metrics_targets(urls, node_address):
    """Scrape addresses of etcd's --listen-metrics-urls as seen from Prometheus.

    Loopback URLs cannot be scraped from another host and are left out; ``0.0.0.0``/``::`` (any
    address) become the node address. Returns (targets, scheme); scheme is that of the first URL kept.
    """
    if isinstance(urls, str):
        urls = [u for u in urls.split(",") if u.strip()]
    targets = []
    scheme = "http"
    for url in urls or ():
        parts = urlsplit(str(url).strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
            raise TargetError(
                "etcd_listen_metrics_urls: %r is not an http(s)://host:port URL; use e.g. http://10.0.0.5:2381" % url
            )
        host = parts.hostname
        if _is_loopback(host):
            continue
        if host in ("0.0.0.0", "::"):  # noqa: S104 - an any-address listener is scraped at the node address
            host = str(node_address)
        target = "%s:%d" % (_host_only(host), parts.port)
        if target not in targets:
            if not targets:
                scheme = parts.scheme
            targets.append(target)
    return targets, scheme


def _add(targets, labels, job, target, extra=None):
    """Append one file_sd entry (a single target with the host's labels and ``extra``) to ``targets[job]``."""
    entry_labels = dict(labels)
    entry_labels.update(extra or {})
    targets[job].append({"targets": [target], "labels": entry_labels})


def build_targets(hostvars, groups, settings=None):
    """File_sd entries per job from inventory-like data.

    hostvars: {name: {vars}} (``smcp_node_ip``/``ansible_host``, ``monitoring_scrape_address``,
    ``etcd_listen_metrics_urls``, ``smcp_apiserver_port``, ``smcp_cluster_name``, ``monitoring_node_exporter_port``
    are read); groups: {group: [names]}; settings: ``source`` (label), ``cluster`` (default cluster name),
    ``etcd_group``/``control_plane_group``/``workers_group``, ``kubelet_port``.

    Returns ``{"targets": {job: [entry, ...]}, "skipped": [{"host", "job", "reason"}]}``.
    """
    settings = dict(settings or {})
    source = str(settings.get("source") or "inventory")
    names = {key: str(settings.get(key + "_group") or default) for key, default in GROUP_DEFAULTS.items()}
    members = {key: set(groups.get(group) or ()) for key, group in names.items()}
    cluster_hosts = members["etcd"] | members["control_plane"] | members["workers"]
    kubelet_port = int(settings.get("kubelet_port") or KUBELET_PORT)
    targets = {job: [] for job in JOBS}
    skipped = []
    for name in sorted(cluster_hosts):
        hv = hostvars.get(name)
        if hv is None:
            raise TargetError("groups: host %r is in a group but has no host variables; add it to the inventory" % name)
        address = hv.get("monitoring_scrape_address") or hv.get("smcp_node_ip") or hv.get("ansible_host") or name
        address = str(address)
        labels = {
            "node": name,
            "cluster": str(hv.get("smcp_cluster_name") or settings.get("cluster") or "smcp"),
            "source": source,
        }
        host = _host_only(address)

        _add(
            targets,
            labels,
            "node",
            "%s:%d" % (host, int(hv.get("monitoring_node_exporter_port") or NODE_EXPORTER_PORT)),
        )
        if name in members["etcd"]:
            urls = hv.get("etcd_listen_metrics_urls", ETCD_METRICS_DEFAULT)
            found, scheme = etcd_metrics_targets(urls, address)
            if found:
                for target in found:
                    _add(targets, labels, "etcd", target, {"__scheme__": scheme})
            else:
                skipped.append(
                    {
                        "host": name,
                        "job": "etcd",
                        "reason": "etcd_listen_metrics_urls has only loopback URLs; add http://<node ip>:2381",
                    }
                )
        if name in members["control_plane"]:
            _add(
                targets,
                labels,
                "kube-apiserver",
                "%s:%d" % (host, int(hv.get("smcp_apiserver_port") or APISERVER_PORT)),
            )
        if name in members["control_plane"] or name in members["workers"]:
            _add(targets, labels, "kubelet", "%s:%d" % (host, kubelet_port))
    return {"targets": targets, "skipped": skipped}


def api_targets(hosts, clusters, settings=None):
    """File_sd entries from the smcp API's host and cluster records (only hosts that belong to a cluster).

    A host's inventory variables are its ``vars`` over its cluster's ``options`` (as the API's generated
    inventory does); its groups are its roles in the cluster record (else the host's ``roles``).
    """
    if not isinstance(hosts, list) or not isinstance(clusters, list):
        raise TargetError("API answer: /hosts and /clusters must be JSON lists; check the API URL and token")
    by_id = {}
    for cluster in clusters:
        if isinstance(cluster, dict) and cluster.get("id"):
            by_id[cluster["id"]] = cluster
    hostvars = {}
    groups = {"etcd": [], "control_plane": [], "workers": []}
    for host in hosts:
        if not isinstance(host, dict) or not host.get("name"):
            raise TargetError("API answer: a host record without a name: %r" % (host,))
        cluster = by_id.get(host.get("cluster_id"))
        if cluster is None:
            continue
        values = dict(cluster.get("options") or {})
        values.update(host.get("vars") or {})
        values.setdefault("ansible_host", host.get("address"))
        values["smcp_cluster_name"] = cluster.get("name") or "smcp"
        hostvars[host["name"]] = values
        roles = None
        for member in cluster.get("hosts") or ():
            if isinstance(member, dict) and member.get("host_id") == host.get("id"):
                roles = member.get("roles")
        for role in roles if roles is not None else host.get("roles") or ():
            if role in groups:
                groups[role].append(host["name"])
    merged = dict(settings or {})
    merged.setdefault("source", "api")
    return build_targets(hostvars, groups, merged)


def render_files(targets, prefix):
    """{file name: JSON text} for a ``build_targets`` result: ``<prefix>-<job>.json`` for every job."""
    return {
        "%s-%s.json" % (prefix, job): json.dumps(targets.get(job, []), indent=2, sort_keys=True) + "\n" for job in JOBS
    }


def write_files(files, out_dir, prefix):
    """Write changed files atomically (readers never see half a file), remove stale ``<prefix>-*.json``.

    Returns the sorted names of the files written or removed.
    """
    os.makedirs(out_dir, exist_ok=True)
    changed = []
    for name, text in sorted(files.items()):
        path = os.path.join(out_dir, name)
        try:
            with open(path, encoding="utf-8") as current:
                if current.read() == text:
                    continue
        except OSError:
            pass
        fd, tmp = tempfile.mkstemp(prefix=".%s." % name, dir=out_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        changed.append(name)
    for name in os.listdir(out_dir):
        if name.startswith(prefix + "-") and name.endswith(".json") and name not in files:
            os.unlink(os.path.join(out_dir, name))
            changed.append(name)
    return sorted(changed)


def fetch_json(url, token, timeout=10.0):
    """GET ``url`` with the bearer token; the parsed JSON body."""
    # http.client rather than ansible's open_url: this also runs as a plain script on the
    # management host (a systemd timer), where ansible is not importable.
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError("--api-url: %r must start with http:// or https://" % url)
    connection_class = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        connection.request("GET", path, headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        if response.status != 200:
            raise TargetError("GET %s answered %s %s: %s" % (url, response.status, response.reason, body[:200]))
        return json.loads(body)
    finally:
        connection.close()


def refresh_from_api(api_url, token, out_dir, prefix="api", timeout=10.0):
    """Read hosts and clusters from the API and rewrite the ``<prefix>-*.json`` target files."""
    base = api_url.rstrip("/")
    hosts = fetch_json(base + "/api/v1/hosts", token, timeout)
    clusters = fetch_json(base + "/api/v1/clusters", token, timeout)
    result = api_targets(hosts, clusters)
    changed = write_files(render_files(result["targets"], prefix), out_dir, prefix)
    return {"changed": changed, "skipped": result["skipped"]}


def main(argv=None):
    """Command line of the installed copy (smcp-file-sd): returns the exit status."""
    parser = argparse.ArgumentParser(description="Write Prometheus file_sd targets from the smcp API")
    parser.add_argument("--api-url", required=True, help="base URL of the smcp API, e.g. http://127.0.0.1:8780")
    parser.add_argument("--token-file", required=True, help="file holding a viewer token")
    parser.add_argument("--out-dir", required=True, help="directory of the file_sd JSON files")
    parser.add_argument("--prefix", default="api", help="file name prefix (default: api)")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    try:
        with open(args.token_file, encoding="utf-8") as handle:
            token = handle.read().strip()
        result = refresh_from_api(args.api_url, token, args.out_dir, args.prefix, args.timeout)
    except (OSError, ValueError) as exc:
        sys.stderr.write("smcp-file-sd: %s\n" % exc)
        return 1
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


def scrape_configs(file_sd_dir, clusters=(), token_dir=None, interval="30s"):
    """Prometheus ``scrape_configs`` entries reading the file_sd files of ``file_sd_dir``.

    ``node`` and ``etcd`` are one job each. kube-apiserver and kubelet need a bearer token per cluster,
    so each cluster gets its own job (``kube-apiserver:<cluster>``, relabelled to ``job="kube-apiserver"``)
    that keeps the targets labelled with that cluster and reads ``<token_dir>/<cluster>.token``.
    """
    token_dir = token_dir or os.path.join(os.path.dirname(file_sd_dir.rstrip("/")), "secrets")

    def files(job):
        return [{"files": [os.path.join(file_sd_dir, "*-%s.json" % job)], "refresh_interval": "1m"}]

    configs = [
        {"job_name": "node", "scrape_interval": interval, "file_sd_configs": files("node")},
        {"job_name": "etcd", "scrape_interval": interval, "file_sd_configs": files("etcd")},
    ]
    for cluster in sorted(set(str(c) for c in clusters or ())):
        for job, path in (("kube-apiserver", "/metrics"), ("kubelet", "/metrics")):
            configs.append(
                {
                    "job_name": "%s:%s" % (job, cluster),
                    "scrape_interval": interval,
                    "scheme": "https",
                    "metrics_path": path,
                    "tls_config": {"insecure_skip_verify": True},
                    "authorization": {"credentials_file": os.path.join(token_dir, "%s.token" % cluster)},
                    "file_sd_configs": files(job),
                    "relabel_configs": [
                        {"source_labels": ["cluster"], "regex": _regex_escape(cluster), "action": "keep"},
                        {"target_label": "job", "replacement": job},
                    ],
                }
            )
    return configs


def _regex_escape(text):
    """Escape for a RE2 regex (Prometheus anchors relabel regexes itself)."""
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in text)
