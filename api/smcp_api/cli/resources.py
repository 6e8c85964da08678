"""`smcpctl cluster|host|credential|token ...`: the API's resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from smcp_api import client as api
from smcp_api.cli import common, config
from smcp_api.cli.jobs import JOB_COLUMNS, start_and_maybe_wait

ROLES = ("etcd", "control_plane", "workers")

HOST_COLUMNS: list[common.Column] = [
    ("NAME", "name"),
    ("ADDRESS", "address"),
    ("USER", "ssh_user"),
    ("ROLES", "roles"),
    ("LABELS", "labels"),
    ("CLUSTER", "cluster_id"),
    ("PREFLIGHT", lambda h: (h.get("last_preflight") or {}).get("status")),
    ("ID", "id"),
]
CLUSTER_COLUMNS: list[common.Column] = [
    ("NAME", "name"),
    ("VERSION", "kubernetes_version"),
    ("CNI", "cni"),
    ("HOSTS", lambda c: len(c.get("hosts") or [])),
    ("POD CIDR", "pod_cidr"),
    ("SERVICE CIDR", "service_cidr"),
    ("CREATED", "created_at"),
    ("ID", "id"),
]
CREDENTIAL_COLUMNS: list[common.Column] = [
    ("NAME", "name"),
    ("KIND", "kind"),
    ("USERNAME", "username"),
    ("FINGERPRINT", "fingerprint"),
    ("CREATED", "created_at"),
    ("ID", "id"),
]
TOKEN_COLUMNS: list[common.Column] = [
    ("NAME", "name"),
    ("ROLE", "role"),
    ("CREATED", "created_at"),
    ("LAST USED", "last_used_at"),
    ("ID", "id"),
]


# ------------------------------------------------------------------------------------------ cluster
class ClusterFileError(click.UsageError):
    """A cluster file that cannot be used (exit 2); the message names the line/column or the field."""


def load_cluster_file(path: Path) -> dict[str, Any]:
    """Read a cluster YAML file; YAML errors name the line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClusterFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ClusterFileError(f"{path}: invalid YAML at {where}: {problem}") from exc
    if not isinstance(data, dict):
        raise ClusterFileError(f"{path}: expected a mapping with name, kubernetes_version and hosts")
    for key in STRING_FIELDS:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ClusterFileError(f"{path}, line {_line_of(text, key)}: {_quote_hint(key, value)}")
    return data


# Top-level fields of a cluster file that are strings: unquoted, `kubernetes_version: 1.34` is a YAML float.
STRING_FIELDS = ("name", "kubernetes_version", "cni", "pod_cidr", "service_cidr", "control_plane_endpoint")


def _line_of(text: str, key: str) -> str:
    """The line (1-based) of a top-level key's value, or '?'."""
    node = yaml.compose(text)
    for key_node, value_node in getattr(node, "value", []):
        if getattr(key_node, "value", None) == key:
            return str(value_node.start_mark.line + 1)
    return "?"


def _quote_hint(key: str, value: float) -> str:
    hint = f"{key}: {value!r} is read by YAML as a number; quote it"
    if key != "kubernetes_version":
        return f'{hint}, e.g. {key}: "{value}"'
    try:
        from smcp_api import versions  # the collection's versions table, when this machine has it

        releases = versions.supported_versions()
    except (ImportError, RuntimeError):  # no collection here (CollectionNotFound): the hint without names
        return f'{hint} with the patch release, e.g. {key}: "1.35.0" (MAJOR.MINOR.PATCH)'
    same_minor = [v for v in releases if v.rsplit(".", 1)[0] == str(value)]
    example = (same_minor or releases)[-1]
    return f'{hint} with the patch release, e.g. {key}: "{example}" (releases: {", ".join(releases)})'


def cluster_body(data: dict[str, Any], hosts: list[dict[str, Any]], source: str = "cluster file") -> dict[str, Any]:
    """The POST /clusters body: `hosts` entries may name a host (`name:` or `host:`) instead of `host_id:`.

    A bare string entry is a host name whose roles are taken from the host record.
    """
    body = dict(data)
    entries = body.get("hosts")
    if not isinstance(entries, list) or not entries:
        raise ClusterFileError(f"{source}: `hosts` must be a non-empty list of {{name: HOST, roles: [...]}}")
    resolved: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise ClusterFileError(f"{source}: hosts[{i}] must be a host name or a mapping, found {entry!r}")
        entry = dict(entry)
        ref = entry.pop("host_id", None) or entry.pop("name", None) or entry.pop("host", None)
        if not ref:
            raise ClusterFileError(f"{source}: hosts[{i}] needs `name:` (a registered host) or `host_id:`")
        try:
            host = common.resolve_ref("host", str(ref), hosts)
        except api.NotFound as exc:
            raise ClusterFileError(f"{source}: hosts[{i}]: {exc}; register it with `smcpctl host add`") from exc
        roles = entry.pop("roles", None) or host.get("roles") or []
        if entry:
            raise ClusterFileError(f"{source}: hosts[{i}] has unknown keys {sorted(entry)}; use name and roles")
        resolved.append({"host_id": host["id"], "roles": list(roles)})
    body["hosts"] = resolved
    return body


def _cluster_view(cluster: dict[str, Any], hosts: list[dict[str, Any]]) -> dict[str, Any]:
    names = {h["id"]: h["name"] for h in hosts}
    view = dict(cluster)
    view["hosts"] = [{"name": names.get(h.get("host_id"), h.get("host_id")), **h} for h in cluster.get("hosts") or []]
    return view


@click.group("cluster")
def cluster() -> None:
    """Clusters: records of a Kubernetes cluster's settings and hosts."""


@cluster.command("create")
@click.option("-f", "--file", "file_", type=click.Path(path_type=Path, dir_okay=False), required=True)
@common.output_option
def cluster_create(file_: Path, output: str) -> None:
    """Create a cluster record from a YAML file (hosts by name; see docs/cli.md)."""
    data = load_cluster_file(file_)
    c = common.client()
    body = cluster_body(data, c.list_hosts(), str(file_))
    created = c.create_cluster(body)
    common.emit(_cluster_view(created, c.list_hosts()) if output == "table" else created, output, CLUSTER_COLUMNS)


@cluster.command("list")
@common.output_option
def cluster_list(output: str) -> None:
    """List clusters."""
    common.emit(common.client().list_clusters(), output, CLUSTER_COLUMNS)


@cluster.command("show")
@click.argument("cluster_ref")
@common.output_option
def cluster_show(cluster_ref: str, output: str) -> None:
    """Show a cluster, its hosts and its recent jobs."""
    c = common.client()
    data = c.get_cluster(common.find_cluster(cluster_ref)["id"])
    view = _cluster_view(data, c.list_hosts())
    if output != "table":
        common.emit(view, output)
        return
    fields = [k for k in view if k not in ("hosts",)]
    common.emit(view, output, [(k, k) for k in fields])
    click.echo("")
    common.emit(view["hosts"], "table", [("HOST", "name"), ("ROLES", "roles"), ("ID", "host_id")])
    jobs = c.list_jobs(cluster_id=data["id"], limit=5)
    if jobs:
        click.echo("")
        common.emit(jobs, "table", JOB_COLUMNS, title="recent jobs")


@cluster.command("upgrade")
@click.argument("cluster_ref")
@click.option("--kubernetes-version", "--to", "version", required=True, help="Target version, e.g. 1.35.0.")
@click.option("--batch-size", type=click.IntRange(1, 100), help="Workers upgraded at a time.")
@click.option("--wait", is_flag=True, help="Follow the job with the live progress view; exit 1 if it fails.")
@common.output_option
def cluster_upgrade(cluster_ref: str, version: str, batch_size: int | None, wait: bool, output: str) -> None:
    """Start an upgrade job for a cluster (extra var smcp_kubernetes_version)."""
    target = common.find_cluster(cluster_ref)
    params = {
        "extra_vars": {"smcp_kubernetes_version": version.removeprefix("v")},
        **api.present(batch_size=batch_size),
    }
    job = common.client().create_job("upgrade", cluster_id=target["id"], params=params)
    start_and_maybe_wait(job, output, wait)


@cluster.command("delete")
@click.argument("cluster_ref")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def cluster_delete(cluster_ref: str, yes: bool) -> None:
    """Delete a cluster record (the machines are untouched: run `job run reset` first to wipe them)."""
    target = common.find_cluster(cluster_ref)
    if not yes:
        click.confirm(f"delete cluster record {target['name']} ({target['id']})?", abort=True)
    common.client().delete_cluster(target["id"])
    click.echo(f"cluster {target['name']} deleted")


# --------------------------------------------------------------------------------------------- host
@click.group("host")
def host() -> None:
    """Hosts: machines reachable over SSH that jobs run on."""


@host.command("add")
@click.argument("name")
@click.option("--address", required=True, help="IP address or DNS name.")
@click.option("--credential", "credential_ref", required=True, help="Credential name or id (SSH key).")
@click.option("--user", "ssh_user", default="smcp", show_default=True)
@click.option("--port", "ssh_port", type=click.IntRange(1, 65535), default=22, show_default=True)
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES), help="Node role (repeatable).")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label (repeatable).")
@click.option("--var", "vars_", multiple=True, help="Inventory variable KEY=VALUE (repeatable; YAML value).")
@click.option("--known-hosts-file", type=click.File("r"), help="known_hosts lines for this host (checked keys).")
@common.output_option
def host_add(
    name: str,
    address: str,
    credential_ref: str,
    ssh_user: str,
    ssh_port: int,
    roles: tuple[str, ...],
    labels: tuple[str, ...],
    vars_: tuple[str, ...],
    known_hosts_file: Any,
    output: str,
) -> None:
    """Register a host."""
    body: dict[str, Any] = {
        "name": name,
        "address": address,
        "ssh_user": ssh_user,
        "ssh_port": ssh_port,
        "credential_id": common.find_credential(credential_ref)["id"],
        "roles": list(roles),
        "labels": {k: str(v) for k, v in common.parse_pairs(labels, "--label").items()},
        "vars": common.parse_pairs(vars_, "--var"),
    }
    if known_hosts_file:
        body["known_hosts"] = known_hosts_file.read()
    common.emit(common.client().create_host(body), output, HOST_COLUMNS)


@host.command("list")
@click.option("-l", "--selector", "selectors", multiple=True, help="Only hosts whose labels match KEY=VALUE.")
@common.output_option
def host_list(selectors: tuple[str, ...], output: str) -> None:
    """List hosts."""
    hosts = common.client().list_hosts()
    wanted = common.parse_pairs(selectors, "--selector")
    hosts = [h for h in hosts if all(str((h.get("labels") or {}).get(k)) == str(v) for k, v in wanted.items())]
    common.emit(hosts, output, HOST_COLUMNS)


@common.show_command(host, "host", common.find_host)
def host_show(data: dict[str, Any]) -> None:
    """Show a host (with its last preflight result)."""
    pre = data.get("last_preflight") or {}
    hidden = ("last_preflight", "known_hosts", "host_key_fingerprints")
    common.emit({k: v for k, v in data.items() if k not in hidden}, "table")
    _print_host_keys(data)
    if pre:
        click.echo(f"\nlast preflight: {pre.get('status')} at {pre.get('at')} (job {pre.get('job_id')})")
        findings = preflight_findings(data["name"], pre)
        if findings:
            common.emit(findings, "table", FINDING_COLUMNS)


def _print_host_keys(data: dict[str, Any]) -> None:
    fingerprints = data.get("host_key_fingerprints") or []
    if not fingerprints:
        click.echo(
            f"\npinned SSH host keys: none yet (the first job records what {data['address']} offers; "
            f"to pin one now: smcpctl host accept-key {data['name']} SHA256:...)"
        )
        return
    click.echo("\npinned SSH host keys:")
    for fp in fingerprints:
        click.echo(f"  {fp}")


@host.command("accept-key")
@click.argument("host_ref")
@click.argument("fingerprint")
@common.output_option
def host_accept_key(host_ref: str, fingerprint: str, output: str) -> None:
    """Pin the SSH host key with FINGERPRINT (SHA256:...) that the host offers now, replacing the old pin.

    The API scans the host now; check FINGERPRINT on the host itself first
    (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub). Exit 5 when the host offers no such key.
    """
    target = common.find_host(host_ref)
    data = common.client().accept_host_key(target["id"], fingerprint)
    if output != "table":
        common.emit(data, output)
        return
    click.echo(f"host {data['name']}: pinned {fingerprint}")
    _print_host_keys(data)


host_delete = common.delete_command(host, "host", "Remove a host record.", common.find_host, api.SmcpClient.delete_host)


@host.command("check")
@click.argument("host_refs", nargs=-1, required=True)
@click.option("--wait", is_flag=True, help="Follow the preflight job(s); exit 1 if a check fails.")
@common.output_option
def host_check(host_refs: tuple[str, ...], wait: bool, output: str) -> None:
    """Run preflight checks on hosts (one job per host); with --wait show the result."""
    c = common.client()
    hosts = c.list_hosts()
    targets = [common.resolve_ref("host", ref, hosts) for ref in host_refs]
    jobs = [c.check_host(t["id"]) for t in targets]
    if not wait:
        common.emit(jobs if len(jobs) > 1 else jobs[0], output, JOB_COLUMNS if len(jobs) > 1 else None)
        return
    from smcp_api.cli.jobs import wait_for_job

    worst = common.EXIT_OK
    findings: list[dict[str, str]] = []
    for target, job in zip(targets, jobs, strict=True):
        if output == "table":
            click.echo(f"preflight of {target['name']}: job {job['id']}")
        worst = max(worst, wait_for_job(job, output, quiet=output != "table"))
        pre = c.get_host(target["id"]).get("last_preflight") or {}
        if output == "table" and pre:
            click.echo(f"{target['name']}: preflight {pre.get('status')}")
            findings += preflight_findings(target["name"], pre)
    if output == "table":
        click.echo("")
        common.emit(findings, "table", FINDING_COLUMNS)
    raise click.exceptions.Exit(worst)


FINDING_COLUMNS: list[common.Column] = [
    ("HOST", "host"),
    ("CHECK", "check"),
    ("SEVERITY", "severity"),
    ("PROBLEM", "problem"),
    ("FIX", "fix"),
]


def _finding(host: str, item: Any, severity: str) -> dict[str, str]:
    """One row of a host's preflight findings: a check's dict, a task failure ({task, msg}) or plain text."""
    if not isinstance(item, dict):
        return {"host": host, "check": "-", "severity": severity, "problem": str(item), "fix": "-"}
    what = str(item.get("what") or item.get("msg") or "-")
    found, need = item.get("found"), item.get("need")
    details = ", ".join(part for part in (f"found {found}" if found else "", f"need {need}" if need else "") if part)
    return {
        "host": host,
        "check": str(item.get("id") or item.get("task") or "-"),
        "severity": str(item.get("severity") or severity),
        "problem": f"{what} ({details})" if details else what,
        "fix": str(item.get("fix") or "-"),
    }


def preflight_findings(host: str, preflight: dict[str, Any]) -> list[dict[str, str]]:
    """A host's last preflight failures and warnings as table rows (failures first)."""
    return [_finding(host, item, "failure") for item in preflight.get("failures") or []] + [
        _finding(host, item, "warning") for item in preflight.get("warnings") or []
    ]


# --------------------------------------------------------------------------------------- credential
@click.group("credential")
def credential() -> None:
    """Credentials: SSH private keys (stored encrypted, never shown again)."""


@credential.command("add")
@click.option("--name", required=True)
@click.option("--key-file", type=click.File("r"), required=True, help="Unencrypted OpenSSH/PEM private key.")
@click.option("--username", help="Default SSH user for hosts using this key.")
@common.output_option
def credential_add(name: str, key_file: Any, username: str | None, output: str) -> None:
    """Store an SSH private key."""
    created = common.client().create_credential(name, key_file.read(), username)
    common.emit(created, output, CREDENTIAL_COLUMNS)


@credential.command("list")
@common.output_option
def credential_list(output: str) -> None:
    """List credentials (fingerprints only)."""
    common.emit(common.client().list_credentials(), output, CREDENTIAL_COLUMNS)


credential_delete = common.delete_command(
    credential,
    "credential",
    "Delete a credential (admin; exit 5 while hosts use it).",
    common.find_credential,
    api.SmcpClient.delete_credential,
)


# -------------------------------------------------------------------------------------------- token
@click.group("token")
def token() -> None:
    """API tokens (admin only)."""


@token.command("create")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), default="operator", show_default=True)
@common.output_option
def token_create(name: str, role: str, output: str) -> None:
    """Create a token; the secret is printed once (table: on its own line, last)."""
    created = common.client().create_token(name, role)
    if output != "table":
        common.emit(created, output)
        return
    common.emit({k: v for k, v in created.items() if k != "token"}, output)
    click.echo(created.get("token") or "(token not shown: idempotent replay)")


@token.command("list")
@common.output_option
def token_list(output: str) -> None:
    """List tokens (never their secrets)."""
    common.emit(common.client().list_tokens(), output, TOKEN_COLUMNS)


token_delete = common.delete_command(token, "token", "Revoke a token.", common.find_token, api.SmcpClient.delete_token)


# ------------------------------------------------------------------------------------------- config
@click.group("config")
def config_group() -> None:
    """smcpctl's own settings (URL and token), kept in ~/.config/smcp/config.yaml (0600)."""


@config_group.command("show")
@common.output_option
def config_show(output: str) -> None:
    """Where the URL and token come from (the token itself is masked)."""
    s = common.state().settings()
    masked = f"{s.token[:9]}...{s.token[-4:]}" if s.token and len(s.token) > 16 else ("(set)" if s.token else None)
    common.emit(
        {"file": str(s.path), "url": s.url, "url_from": s.url_source, "token": masked, "token_from": s.auth_source},
        output,
    )


@config_group.command("set")
@click.option("--url", "new_url", help="API base URL to store.")
@click.option("--token", "new_token", help="Bearer token to store (checked against the API first).")
def config_set(new_url: str | None, new_token: str | None) -> None:
    """Store a URL and/or token in the config file (mode 0600) after checking that they work."""
    if not (new_url or new_token):
        raise click.UsageError("give --url and/or --token")
    s = common.state().settings()
    url = (new_url or s.url).rstrip("/")
    with api.SmcpClient(url, new_token or s.token, transport=common.state().transport) as c:
        c.healthz()
        if new_token:
            c.list_hosts()  # any role may read: proves the token is valid
    updates = {k: v for k, v in (("url", url if new_url else None), ("token", new_token)) if v}
    config.save_file(s.path, updates)
    click.echo(f"saved {', '.join(sorted(updates))} to {s.path}")
