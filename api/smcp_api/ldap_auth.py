"""LDAP login (optional, off unless SMCP_LDAP_URL is set): bind as the user, groups -> roles per project.

A login name is looked up under `ldap_user_base` with `(&(objectClass=*)(<ldap_user_attr>=<name>))`, the name
escaped with ldap3's `escape_filter_chars` (a `*` or `)(` in it matches itself, never more); exactly one entry
must answer. The password is checked by binding as that entry (never compared here; an empty password is refused
before any bind, since LDAP treats a bind without one as an anonymous bind that succeeds). The user's groups are
the entries under `ldap_group_base` naming the user's DN as `member` or `uniqueMember` (or the name as
`memberUid`), again escaped. `ldap_group_roles` maps groups (by DN or cn) to a role in a project, or to platform
admin; a user's role in a project is the highest their groups give.

`ldap_login` keeps a `users` row for each directory user (`source="ldap"`, no password hash) and replaces its
role bindings with the mapping's on every login, so a change in the directory takes effect at the next login.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from ldap3 import NONE, SIMPLE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from smcp_api.core.config import LdapGroupRole, Settings
from smcp_api.errors import Unavailable
from smcp_api.models import Project, RoleBinding, User, utcnow
from smcp_api.security import ROLE_RANK

log = logging.getLogger(__name__)
SOURCE = "ldap"
MAX_GROUPS = 1000


class DirectoryRefused(Exception):
    """Unknown name, several entries for it, wrong or empty password (the reason is logged, never answered)."""


class DirectoryUnavailable(Unavailable):
    """The LDAP server did not answer, or refused the search account (503; the message names the setting)."""


@dataclass
class LdapIdentity:
    username: str
    dn: str
    groups: list[tuple[str, str]] = field(default_factory=list)  # (dn, cn)
    platform_admin: bool = False
    roles: dict[str, str] = field(default_factory=dict)  # project name -> role


def user_filter(attr: str, username: str) -> str:
    return f"(&(objectClass=*)({attr}={escape_filter_chars(username)}))"


def group_filter(dn: str, username: str) -> str:
    d, u = escape_filter_chars(dn), escape_filter_chars(username)
    return f"(|(member={d})(uniqueMember={d})(memberUid={u}))"


def map_groups(groups: list[tuple[str, str]], mapping: list[LdapGroupRole]) -> tuple[bool, dict[str, str]]:
    """(platform admin?, project -> highest role) that `groups` ((dn, cn) pairs) are given by `mapping`."""
    names = {dn.lower() for dn, _ in groups} | {cn.lower() for _, cn in groups if cn}
    admin = False
    roles: dict[str, str] = {}
    for line in mapping:
        if line.group.lower() not in names:
            continue
        if line.platform_admin:
            admin = True
        if line.project is not None and line.role is not None:
            current = roles.get(line.project)
            if current is None or ROLE_RANK[line.role] > ROLE_RANK[current]:
                roles[line.project] = line.role
    return admin, roles


class Directory:
    """One LDAP server as the settings describe it."""

    def __init__(self, settings: Settings) -> None:
        if not settings.ldap_url:
            raise ValueError("LDAP login is off: set SMCP_LDAP_URL")
        self.settings = settings
        self.timeout = max(1, math.ceil(settings.ldap_timeout))  # ldap3 packs socket timeouts as whole seconds
        self.server = Server(settings.ldap_url, connect_timeout=self.timeout, get_info=NONE)

    def _connect(self, user: str | None, password: str | None) -> Connection:
        conn = Connection(
            self.server,
            user=user,
            password=password,
            authentication=SIMPLE if user else None,
            receive_timeout=self.timeout,
            read_only=True,
            raise_exceptions=False,
        )
        conn.open()
        if self.settings.ldap_start_tls:
            conn.start_tls()
        return conn

    def _search_connection(self) -> Connection:
        s = self.settings
        try:
            conn = self._connect(s.ldap_bind_dn or None, s.ldap_bind_password.get_secret_value() or None)
            bound = conn.bind()
        except LDAPException as exc:
            raise DirectoryUnavailable(
                f"LDAP server {s.ldap_url} cannot be reached ({type(exc).__name__}); check SMCP_LDAP_URL and that "
                "the server answers"
            ) from None
        if not bound:
            raise DirectoryUnavailable(
                "the LDAP server refused the search account: check SMCP_LDAP_BIND_DN and SMCP_LDAP_BIND_PASSWORD"
            )
        return conn

    def find_user(self, conn: Connection, username: str) -> str:
        """The DN of the one entry whose login attribute is `username` (escaped); DirectoryRefused otherwise."""
        s = self.settings
        conn.search(s.ldap_user_base, user_filter(s.ldap_user_attr, username), SUBTREE, attributes=[], size_limit=2)
        entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            raise DirectoryRefused(f"{len(entries)} directory entries for the login name")
        return str(entries[0]["dn"])

    def groups_of(self, conn: Connection, dn: str, username: str) -> list[tuple[str, str]]:
        s = self.settings
        if not s.ldap_group_base:
            return []
        conn.search(s.ldap_group_base, group_filter(dn, username), SUBTREE, attributes=["cn"], size_limit=MAX_GROUPS)
        groups = []
        for entry in conn.response or []:
            if entry.get("type") != "searchResEntry":
                continue
            cn = entry.get("attributes", {}).get("cn") or []
            groups.append((str(entry["dn"]), str(cn[0] if isinstance(cn, list) and cn else cn or "")))
        return groups

    def authenticate(self, username: str, password: str) -> LdapIdentity:
        """The user's identity when `password` binds as their entry; DirectoryRefused or DirectoryUnavailable."""
        if not password:
            raise DirectoryRefused("empty password (an LDAP bind without one is anonymous)")
        conn = self._search_connection()
        try:
            dn = self.find_user(conn, username)
            try:
                own = self._connect(dn, password)
                bound = own.bind()
                own.unbind()
            except LDAPException as exc:
                raise DirectoryUnavailable(
                    f"LDAP server {self.settings.ldap_url} failed during the bind ({type(exc).__name__})"
                ) from None
            if not bound:
                raise DirectoryRefused("the password does not bind as the user's entry")
            groups = self.groups_of(conn, dn, username)
        finally:
            conn.unbind()
        admin, roles = map_groups(groups, self.settings.ldap_group_roles)
        return LdapIdentity(username=username, dn=dn, groups=groups, platform_admin=admin, roles=roles)


def ldap_login(settings: Settings, session: Session, username: str, password: str) -> User | None:
    """The `users` row of a directory user whose password binds, with its role bindings replaced by the group
    mapping's; None when the directory refuses (unknown name, wrong password, no group giving a role), so that
    the caller answers its one login failure. `username` is a valid user name (identity.check_login checks it
    first). The caller commits."""
    try:
        identity = Directory(settings).authenticate(username, password)
    except DirectoryRefused as exc:
        log.info("ldap: login refused for a user name: %s", exc)
        return None
    projects = {p.name: p.id for p in session.scalars(select(Project).where(Project.name.in_(identity.roles)))}
    for name in sorted(set(identity.roles) - set(projects)):
        log.warning("ldap: SMCP_LDAP_GROUP_ROLES names project '%s', which does not exist; skipped", name)
    if not identity.platform_admin and not projects:
        log.info("ldap: no group of the user gives a role in an existing project")
        return None
    user = session.scalar(select(User).where(User.username == username.lower()))
    if user is None:
        user = User(username=username.lower(), password_hash=None, source=SOURCE)
        session.add(user)
    elif user.source != SOURCE or user.disabled:
        return None  # a local user's name is never taken over by a directory entry
    user.platform_admin = identity.platform_admin
    user.last_login_at = utcnow()
    session.flush()
    session.execute(delete(RoleBinding).where(RoleBinding.user_id == user.id))
    for name, project_id in projects.items():
        session.add(RoleBinding(user_id=user.id, project_id=project_id, role=identity.roles[name]))
    session.flush()
    return user
