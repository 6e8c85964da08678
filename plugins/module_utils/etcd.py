# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""etcd v3 cluster membership and health over the gRPC gateway (HTTPS + client certs).

Standard library only, so the module runs on any member without etcdctl. The parsing
and decision functions are pure and unit-tested without a host; ``EtcdClient`` is the
only part that touches the network (its transport is injectable for tests).
"""

from __future__ import annotations

import json
import time
import urllib.error
from dataclasses import dataclass, field
from typing import Any, Callable

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, open_url

Transport = Callable[[str, str, "dict[str, Any] | None"], "dict[str, Any]"]


class EtcdError(Exception):
    """An etcd request failed or the requested change is unsafe."""


@dataclass
class Member:
    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str] = field(default_factory=list)
    is_learner: bool = False

    @property
    def started(self) -> bool:
        # An added member has no name and no client URLs until it has started and joined.
        return bool(self.name)

    @property
    def hex_id(self) -> str:
        return format(self.id, "x")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.hex_id,
            "name": self.name,
            "peer_urls": list(self.peer_urls),
            "client_urls": list(self.client_urls),
            "started": self.started,
            "is_learner": self.is_learner,
        }


@dataclass
class Status:
    endpoint: str
    member_id: int
    leader: int
    version: str
    db_size: int
    db_size_in_use: int
    raft_term: int


def quorum(size: int) -> int:
    """Members that must be up for a cluster of ``size`` to accept writes."""
    return size // 2 + 1


def max_down(size: int) -> int:
    """Members that may be down at once without losing quorum: (n-1)/2."""
    return max((size - 1) // 2, 0)


def _int(value: Any) -> int:
    # The gateway encodes 64-bit integers as JSON strings and omits zero values.
    if value in (None, ""):
        return 0
    return int(value)


def parse_members(payload: dict[str, Any]) -> list[Member]:
    members = []
    for raw in payload.get("members") or []:
        members.append(
            Member(
                id=_int(raw.get("ID")),
                name=raw.get("name") or "",
                peer_urls=sorted(raw.get("peerURLs") or []),
                client_urls=sorted(raw.get("clientURLs") or []),
                is_learner=bool(raw.get("isLearner", False)),
            )
        )
    return sorted(members, key=lambda m: (m.name or "~", m.peer_urls))


def parse_status(endpoint: str, payload: dict[str, Any]) -> Status:
    header = payload.get("header") or {}
    return Status(
        endpoint=endpoint,
        member_id=_int(header.get("member_id")),
        leader=_int(payload.get("leader")),
        version=payload.get("version") or "",
        db_size=_int(payload.get("dbSize")),
        db_size_in_use=_int(payload.get("dbSizeInUse")),
        raft_term=_int(payload.get("raftTerm") or header.get("raft_term")),
    )


def parse_health(payload: dict[str, Any]) -> bool:
    value = payload.get("health")
    return value is True or str(value).lower() == "true"


def find_member(members: list[Member], name: str | None, peer_urls: list[str] | None) -> Member | None:
    """The member with this name, else the one sharing a peer URL (an added, unstarted member has no name)."""
    if name:
        for member in members:
            if member.name == name:
                return member
    wanted = set(peer_urls or [])
    if wanted:
        for member in members:
            if wanted & set(member.peer_urls):
                return member
    return None


def initial_cluster(members: list[Member], name: str, peer_urls: list[str]) -> str:
    """The ``--initial-cluster`` value for a member joining with ``name`` and ``peer_urls``."""
    parts = []
    for member in members:
        member_name = member.name
        if not member_name and set(member.peer_urls) & set(peer_urls):
            member_name = name
        if not member_name:
            raise EtcdError(
                f"member {member.hex_id} ({', '.join(member.peer_urls)}) was added but never started: "
                "start it or remove it (etcd_member state=absent) before adding another member"
            )
        parts.extend(f"{member_name}={url}" for url in member.peer_urls)
    return ",".join(sorted(parts))


def check_removal(members: list[Member], target: Member, healthy_ids: set[int]) -> None:
    """Refuse a removal that would leave the cluster without quorum."""
    remaining = [m for m in members if m.id != target.id]
    if not remaining:
        raise EtcdError(f"refusing to remove {target.name or target.hex_id}: it is the last member of the cluster")
    healthy_left = len([m for m in remaining if m.id in healthy_ids])
    if healthy_left < quorum(len(remaining)):
        raise EtcdError(
            f"refusing to remove {target.name or target.hex_id}: only {healthy_left} of the remaining "
            f"{len(remaining)} members are healthy, {quorum(len(remaining))} are needed for quorum; "
            "bring members back first"
        )


def check_addition(members: list[Member], healthy_ids: set[int]) -> None:
    """Refuse an addition when the grown cluster would not have quorum (etcd's strict reconfig check)."""
    unstarted = [m for m in members if not m.started]
    if unstarted:
        raise EtcdError(
            f"member {unstarted[0].hex_id} ({', '.join(unstarted[0].peer_urls)}) was added but never started: "
            "start or remove it before adding another member"
        )
    healthy = len([m for m in members if m.id in healthy_ids])
    if healthy < quorum(len(members) + 1):
        raise EtcdError(
            f"refusing to add a member: {healthy} of {len(members)} members are healthy, "
            f"{quorum(len(members) + 1)} are needed once the cluster grows"
        )


def cluster_summary(members: list[Member], statuses: dict[int, Status], health: dict[int, bool]) -> dict[str, Any]:
    """Facts: members with health/version/DB size, the leader, and overall health."""
    leader_ids = {s.leader for s in statuses.values() if s.leader}
    rows = []
    for member in members:
        status = statuses.get(member.id)
        row = member.as_dict()
        row.update(
            healthy=bool(health.get(member.id)),
            version=status.version if status else "",
            db_size=status.db_size if status else 0,
            db_size_in_use=status.db_size_in_use if status else 0,
            is_leader=member.id in leader_ids,
        )
        rows.append(row)
    leaders = [r["name"] or r["id"] for r in rows if r["is_leader"]]
    healthy_count = len([r for r in rows if r["healthy"]])
    return {
        "exists": bool(members),
        "members": rows,
        "member_count": len(rows),
        "healthy_count": healthy_count,
        "healthy": bool(rows) and healthy_count == len(rows) and len(leaders) == 1,
        "quorum": bool(rows) and healthy_count >= quorum(len(rows)),
        "leader": leaders[0] if len(leaders) == 1 else "",
        "versions": sorted({r["version"] for r in rows if r["version"]}),
        "db_size": max([r["db_size"] for r in rows] or [0]),
    }


class EtcdClient:
    """Minimal etcd v3 gRPC-gateway client with TLS client certificates."""

    def __init__(
        self,
        endpoints: list[str],
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        timeout: float = 3.0,
        transport: Transport | None = None,
    ) -> None:
        if not endpoints:
            raise EtcdError("no endpoints given")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self._transport = transport or self._http

    def _http(self, endpoint: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = open_url(
                endpoint + path,
                data=None if body is None else json.dumps(body),
                method="GET" if body is None else "POST",
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
                validate_certs=True,
                ca_path=self.ca_file,
                client_cert=self.cert_file,
                client_key=self.key_file,
            )
            return json.loads(response.read().decode() or "{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise EtcdError(f"{endpoint}{path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, UrlsConnectionError, OSError, ValueError) as exc:
            raise EtcdError(f"{endpoint}{path}: {getattr(exc, 'reason', exc)}") from None

    def call(self, endpoint: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._transport(endpoint, path, body)

    def first(self, path: str, body: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Send to the first endpoint that answers; EtcdError listing every failure if none does."""
        errors = []
        for endpoint in self.endpoints:
            try:
                return endpoint, self.call(endpoint, path, body)
            except EtcdError as exc:
                errors.append(str(exc))
        raise EtcdError("no etcd endpoint answered: " + "; ".join(errors))

    def member_list(self) -> list[Member]:
        return parse_members(self.first("/v3/cluster/member/list", {})[1])

    def status(self, endpoint: str) -> Status:
        return parse_status(endpoint, self.call(endpoint, "/v3/maintenance/status", {}))

    def healthy(self, endpoint: str) -> bool:
        try:
            return parse_health(self.call(endpoint, "/health"))
        except EtcdError:
            return False

    def member_add(self, peer_urls: list[str]) -> tuple[Member, list[Member]]:
        _endpoint, payload = self.first("/v3/cluster/member/add", {"peerURLs": peer_urls})
        added = parse_members({"members": [payload.get("member") or {}]})[0]
        return added, parse_members(payload)

    def member_remove(self, member: Member) -> None:
        self.first("/v3/cluster/member/remove", {"ID": str(member.id)})

    def member_update(self, member: Member, peer_urls: list[str]) -> None:
        self.first("/v3/cluster/member/update", {"ID": str(member.id), "peerURLs": peer_urls})

    def inspect(self, members: list[Member]) -> tuple[dict[int, Status], dict[int, bool]]:
        """Status and health of every started member, asked through its own client URL."""
        statuses: dict[int, Status] = {}
        health: dict[int, bool] = {}
        for member in members:
            health[member.id] = False
            for url in member.client_urls:
                try:
                    status = self.status(url.rstrip("/"))
                except EtcdError:
                    continue
                statuses[member.id] = status
                health[member.id] = self.healthy(url.rstrip("/"))
                break
        return statuses, health

    def summary(self) -> tuple[list[Member], dict[str, Any]]:
        """Members and health facts; an empty summary when no endpoint answers."""
        try:
            members = self.member_list()
        except EtcdError:
            return [], cluster_summary([], {}, {})
        statuses, health = self.inspect(members)
        return members, cluster_summary(members, statuses, health)

    def wait_healthy(
        self, timeout: float, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic
    ) -> tuple[list[Member], dict[str, Any]]:
        """Poll until every member is healthy and there is one leader; EtcdError after ``timeout`` seconds."""
        deadline = clock() + timeout
        while True:
            members, summary = self.summary()
            if summary["healthy"]:
                return members, summary
            if clock() >= deadline:
                sick = [m["name"] or m["id"] for m in summary["members"] if not m["healthy"]]
                raise EtcdError(
                    f"cluster not healthy after {timeout:g}s: "
                    + (f"unhealthy members: {', '.join(sick)}" if sick else "no member answered or no leader")
                )
            sleep(0.5)
