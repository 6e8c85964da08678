"""LDAP login against a real slapd (tests/api/slapd.py): bind as the user, groups -> roles, escaped filters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from smcp_api.core.config import LdapGroupRole, Settings
from smcp_api.ldap_auth import Directory, DirectoryRefused, DirectoryUnavailable, group_filter, ldap_login
from smcp_api.models import RoleBinding, User
from sqlalchemy import select

from tests.api.slapd import ADMIN_DN, SUFFIX, Slapd, free_port, slapd_server

USERS = {"alice": "alice-passphrase-1", "bob": "bob-passphrase-22", "carol": "carol-passphrase-3", "dave": "dave-pw-44"}
GROUPS = {"ops": ["alice"], "viewers": ["alice", "bob"], "admins": ["carol"], "unmapped": ["dave"]}
MAPPING = [
    LdapGroupRole(group="ops", project="default", role="operator"),
    LdapGroupRole(group=f"cn=viewers,ou=groups,{SUFFIX}", project="default", role="viewer"),
    LdapGroupRole(group="viewers", project="no-such-project", role="admin"),
    LdapGroupRole(group="admins", platform_admin=True),
]


@pytest.fixture(scope="module")
def slapd() -> Iterator[Slapd]:
    with slapd_server(USERS, GROUPS) as server:
        yield server


def roles_of(session: Any, user_id: str) -> set[tuple[str, str]]:
    return {(b.project_id, b.role) for b in session.scalars(select(RoleBinding).where(RoleBinding.user_id == user_id))}


def ldap_settings(server: Slapd, **extra: Any) -> dict[str, Any]:
    return {
        "ldap_url": server.url,
        "ldap_bind_dn": ADMIN_DN,
        "ldap_bind_password": SecretStr(server.admin_password),
        "ldap_user_base": f"ou=people,{SUFFIX}",
        "ldap_group_base": f"ou=groups,{SUFFIX}",
        "ldap_group_roles": MAPPING,
        **extra,
    }


@pytest.fixture
def directory(slapd: Slapd, tmp_path: Any) -> Directory:
    return Directory(Settings(data_dir=tmp_path, **ldap_settings(slapd)))


def test_bind_as_the_user_and_map_groups(directory: Directory) -> None:
    alice = directory.authenticate("alice", USERS["alice"])
    assert alice.dn == f"uid=alice,ou=people,{SUFFIX}"
    assert sorted(cn for _, cn in alice.groups) == ["ops", "viewers"]
    assert (alice.platform_admin, alice.roles) == (False, {"default": "operator", "no-such-project": "admin"})
    carol = directory.authenticate("carol", USERS["carol"])
    assert (carol.platform_admin, carol.roles) == (True, {})


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong-passphrase"), ("alice", ""), ("nobody", "whatever-it-is"), ("bob", USERS["alice"])],
)
def test_wrong_unknown_or_empty_is_refused(directory: Directory, username: str, password: str) -> None:
    with pytest.raises(DirectoryRefused):
        directory.authenticate(username, password)


@pytest.mark.parametrize("name", ["ali*", "*", "alice)(uid=*", "*)(objectClass=*", "al\\2a"])
def test_a_filter_in_the_name_matches_only_itself(directory: Directory, name: str) -> None:
    # Unescaped, "ali*" would find alice's entry and her password would log in as "ali*".
    with pytest.raises(DirectoryRefused):
        directory.authenticate(name, USERS["alice"])


def test_the_group_filter_is_escaped() -> None:
    assert group_filter("uid=a*,ou=p", "a)(cn=*") == "(|(member=uid=a\\2a,ou=p)(uniqueMember=uid=a\\2a,ou=p)" + (
        "(memberUid=a\\29\\28cn=\\2a))"
    )


def test_unreachable_server_or_refused_search_account_name_the_setting(slapd: Slapd, tmp_path: Any) -> None:
    down = Directory(Settings(data_dir=tmp_path, **ldap_settings(slapd, ldap_url=f"ldap://127.0.0.1:{free_port()}")))
    with pytest.raises(DirectoryUnavailable, match="SMCP_LDAP_URL"):
        down.authenticate("alice", USERS["alice"])
    refused = Directory(
        Settings(data_dir=tmp_path, **ldap_settings(slapd, ldap_bind_password=SecretStr("not-the-password")))
    )
    with pytest.raises(DirectoryUnavailable, match="SMCP_LDAP_BIND_PASSWORD") as caught:
        refused.authenticate("alice", USERS["alice"])
    assert "not-the-password" not in str(caught.value)


def test_ldap_login_keeps_a_user_and_replaces_its_bindings(
    start_api: Callable[..., Any], slapd: Slapd, tmp_path: Any
) -> None:
    api = start_api(**ldap_settings(slapd))
    settings = api.services.settings
    with api.services.sessions() as session:
        user = ldap_login(settings, session, "alice", USERS["alice"])
        assert user is not None and user.source == "ldap" and user.password_hash is None
        session.commit()
        bindings = {
            (b.project_id, b.role) for b in session.scalars(select(RoleBinding).where(RoleBinding.user_id == user.id))
        }
        assert bindings == {("default", "operator")}
        # the directory's word changes: alice now only views
        fewer = settings.model_copy(update={"ldap_group_roles": MAPPING[1:]})
        again = ldap_login(fewer, session, "alice", USERS["alice"])
        session.commit()
        assert again is not None and again.id == user.id
        bindings = {
            (b.project_id, b.role) for b in session.scalars(select(RoleBinding).where(RoleBinding.user_id == user.id))
        }
        assert bindings == {("default", "viewer")}
        carol = ldap_login(settings, session, "carol", USERS["carol"])
        assert carol is not None and carol.platform_admin
        assert ldap_login(settings, session, "dave", USERS["dave"]) is None  # no group gives a role
        assert ldap_login(settings, session, "alice", "wrong-passphrase") is None
        # a local user of the same name is never taken over by a directory entry
        session.add(User(username="bob", password_hash=None, source="local"))
        session.commit()
        assert ldap_login(settings, session, "bob", USERS["bob"]) is None


def test_login_route_with_ldap(start_api: Callable[..., Any], slapd: Slapd) -> None:
    api = start_api(**ldap_settings(slapd))
    login = "/api/v1/auth/login"
    ok = api.client.post(login, json={"username": "alice", "password": USERS["alice"]})
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["user"]["source"] == "ldap" and not body["user"]["has_password"]
    me = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"}).json()
    assert (me["project"], me["role"]) == ("default", "operator")
    for username, password in (("alice", "wrong-passphrase"), ("ali*", USERS["alice"]), ("nobody", "x" * 12)):
        refused = api.client.post(login, json={"username": username, "password": password})
        assert refused.status_code in (401, 422), (username, refused.text)
    # the directory's users are throttled like local ones
    statuses = [
        api.client.post(login, json={"username": "bob", "password": "wrong-passphrase"}).status_code for _ in range(7)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429
    # the directory down: 503 naming the setting, never a password
    down = start_api(**ldap_settings(slapd, ldap_url=f"ldap://127.0.0.1:{free_port()}"))
    answer = down.client.post(login, json={"username": "carol", "password": USERS["carol"]})
    assert answer.status_code == 503 and "SMCP_LDAP_URL" in answer.text
    assert slapd.admin_password not in answer.text
