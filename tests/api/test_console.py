"""The web console (api/smcp_api/console): pages, login, CSRF, roles and projects, through the app in process.

The browser tests (a real chromium on sandbox hosts) are tests/console/test_console_browser.py.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
STATIC = Path(__file__).resolve().parents[2] / "api" / "smcp_api" / "console" / "static"


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, html[:2000]
    return m.group(1)


def sign_in(api: Any, token: str) -> Any:
    """A browser-like client signed in with `token` (the login form, its CSRF token and the session cookie)."""
    client = api.client
    client.cookies.clear()
    page = client.get("/console/login")
    r = client.post(
        "/console/login", data={"csrf": csrf_of(page.text), "token": token, "next": "/console/"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return client


def bearer(api: Any, role: str) -> str:
    return api.headers(role)["Authorization"].split()[1]


def test_pages_need_a_session(api):
    r = api.client.get("/console/hosts", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=%2Fconsole%2Fhosts")


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(api):
    client = sign_in(api, bearer(api, "admin"))
    cookie = next(h for h in client.get("/console/").request.headers.get_list("cookie"))
    assert "smcp_session=" in cookie
    page = api.client.get("/console/login")
    r = api.client.post(
        "/console/login", data={"csrf": csrf_of(page.text), "token": bearer(api, "admin")}, follow_redirects=False
    )
    set_cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("smcp_session="))
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie and "Secure" not in set_cookie
    home = api.client.get("/console/")
    r = api.client.post("/console/logout", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert api.client.get("/console/", follow_redirects=False).status_code == 303
    # behind the management plane's TLS proxy the cookie is Secure
    over_tls = api.client.post(
        "/console/login",
        data={"csrf": csrf_of(api.client.get("/console/login").text), "token": bearer(api, "admin")},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert any("Secure" in v for k, v in over_tls.headers.multi_items() if k == "set-cookie" and "smcp_session" in v), (
        over_tls.status_code,
        over_tls.headers,
    )


def test_a_bad_token_is_refused_at_login(api):
    page = api.client.get("/console/login")
    r = api.client.post("/console/login", data={"csrf": csrf_of(page.text), "token": "smcp_nope"})
    assert r.status_code == 401
    assert "does not know this token" in r.text


def test_every_form_needs_its_csrf_token(api):
    client = sign_in(api, bearer(api, "admin"))
    for path in ("/console/credentials", "/console/hosts/new", "/console/logout", "/console/tokens"):
        r = client.post(path, data={"name": "x"})
        assert r.status_code == 403, path
        assert "CSRF token" in r.text
        r = client.post(path, data={"name": "x", "csrf": "0" * 64})
        assert r.status_code == 403, path
    # a form posted from another site is refused even with a token
    home = client.get("/console/")
    r = client.post("/console/logout", data={"csrf": csrf_of(home.text)}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    # the same host on another port (nginx passes Host without the port the browser used) is this console
    page = client.get("/console/credentials")
    r = client.post(
        "/console/credentials",
        data={"csrf": csrf_of(page.text), "name": "k", "private_key": "x"},
        headers={"Origin": "https://testserver:8443"},
    )
    assert r.status_code == 422
    # the login form too (its token is bound to a cookie of its own)
    client.cookies.clear()
    r = client.post("/console/login", data={"token": bearer(api, "admin")})
    assert r.status_code == 403


def test_every_page_renders_for_an_admin(api, private_key):
    cred = api.credential("ops", private_key())
    host = api.host("node-1", cred["id"], labels={"env": "prod"})
    cluster = api.cluster("c1", [host["id"]])
    job = api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]}).json()
    client = sign_in(api, bearer(api, "admin"))
    pages = {
        "/console/": ["c1", "1.34.4"],
        "/console/hosts": ["node-1", "env=prod", ">c1</a>"],
        f"/console/hosts/{host['id']}": ["node-1", "Never checked"],
        "/console/hosts/new": ["Add a host"],
        f"/console/clusters/{cluster['id']}": ["node-1", "Upgrade plan"],
        "/console/jobs": [job["id"][:12]],
        f"/console/jobs/{job['id']}": ["preflight", "job-log"],
        "/console/credentials": ["ops", cred["fingerprint"]],
        "/console/tokens": ["New token"],
    }
    for path, texts in pages.items():
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:3000])
        for text in texts:
            assert text in r.text, (path, text)
        assert "<main" in r.text and 'lang="en"' in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "script-src 'self';" in r.headers["content-security-policy"]


def test_static_files_and_vendored_htmx_matches_its_readme(api):
    readme = (STATIC / "README.md").read_text()
    digest = hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest()
    assert f"`{digest}`" in readme
    r = api.client.get("/console/static/htmx.min.js")
    assert r.status_code == 200 and r.content == (STATIC / "htmx.min.js").read_bytes()


def test_a_viewer_sees_no_action_and_the_server_refuses_them_anyway(api, private_key):
    cred = api.credential("ops", private_key())
    host = api.host("node-1", cred["id"])
    cluster = api.cluster("c1", [host["id"]])
    job = api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]}).json()
    client = sign_in(api, bearer(api, "viewer"))
    pages = {
        f"/console/hosts/{host['id']}": ["/check", 'action="/console/hosts/' + host["id"] + '"'],
        "/console/hosts": ["Add a host"],
        f"/console/clusters/{cluster['id']}": ["/confirm", "Actions"],
        f"/console/clusters/{cluster['id']}/confirm?operation=certs": ["/run"],
        f"/console/jobs/{job['id']}": ["cancel-job"],
        "/console/credentials": ["Upload an SSH private key"],
        "/console/": ["/console/tokens", "/console/audit"],
    }
    for path, absent in pages.items():
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:2000])
        for text in absent:
            assert text not in r.text, (path, text)
    csrf = csrf_of(client.get("/console/").text)
    refused = {
        f"/console/hosts/{host['id']}/check": {},
        f"/console/jobs/{job['id']}/cancel": {},
        f"/console/clusters/{cluster['id']}/run": {"operation": "certs"},
        "/console/credentials": {"name": "k2", "private_key": private_key()},
        "/console/hosts/new": {
            "name": "node-2",
            "address": "192.0.2.7",
            "ssh_user": "root",
            "credential_id": cred["id"],
        },
    }
    for path, data in refused.items():
        r = client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code, r.text[:2000])
        assert "needs role operator" in r.text, path
    assert api.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "pending"
    assert [c["name"] for c in api.get("/api/v1/credentials").json()] == ["ops"]


def test_host_form_shows_the_api_validation_messages(api, private_key):
    cred = api.credential("ops", private_key())
    client = sign_in(api, bearer(api, "operator"))
    csrf = csrf_of(client.get("/console/hosts/new").text)
    form = {"csrf": csrf, "name": "node-1", "address": "192.0.2.7", "ssh_user": "root", "ssh_port": "70000"}
    r = client.post("/console/hosts/new", data={**form, "credential_id": cred["id"], "roles": ["workers", "etcd"]})
    assert r.status_code == 422
    body = {
        "name": "node-1",
        "address": "192.0.2.7",
        "ssh_user": "root",
        "ssh_port": 70000,
        "credential_id": cred["id"],
    }
    expected = api.post("/api/v1/hosts", json=body).json()["detail"][0]["msg"]
    assert expected in r.text.replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
    assert 'value="node-1"' in r.text  # the form keeps what was typed
    r = client.post("/console/hosts/new", data={**form, "ssh_port": "22", "credential_id": "nope"})
    assert r.status_code == 422 and "credential &#39;nope&#39; does not exist" in r.text
    r = client.post(
        "/console/hosts/new", data={**form, "ssh_port": "22", "credential_id": cred["id"], "vars": "a: &x 1"}
    )
    assert r.status_code == 422 and "vars: YAML aliases are not accepted" in r.text
    r = client.post(
        "/console/hosts/new",
        data={
            **form,
            "ssh_port": "22",
            "credential_id": cred["id"],
            "labels": "env=prod\nrack=a",
            "roles": ["workers"],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    host = api.get("/api/v1/hosts").json()[0]
    assert (host["labels"], host["roles"], host["ssh_port"]) == ({"env": "prod", "rack": "a"}, ["workers"], 22)
    # edit: only the fields that changed are sent; the API's messages again
    csrf = csrf_of(client.get(f"/console/hosts/{host['id']}").text)
    edit = {"csrf": csrf, "address": "192.0.2.8", "ssh_user": "root", "ssh_port": "22", "credential_id": cred["id"]}
    r = client.post(f"/console/hosts/{host['id']}", data={**edit, "roles": ["workers"]}, follow_redirects=False)
    assert r.status_code == 303
    assert api.get(f"/api/v1/hosts/{host['id']}").json()["address"] == "192.0.2.8"
    r = client.post(f"/console/hosts/{host['id']}", data={**edit, "address": "bad address!"})
    assert r.status_code == 422 and "address" in r.text


def test_a_credential_is_uploaded_and_never_shown_again(api, private_key):
    key = private_key()
    client = sign_in(api, bearer(api, "operator"))
    csrf = csrf_of(client.get("/console/credentials").text)
    r = client.post(
        "/console/credentials",
        data={"csrf": csrf, "name": "ops"},
        files={"key_file": ("id_ed25519", key.encode(), "application/octet-stream")},
    )
    assert r.status_code == 200 and "never be shown again" in r.text
    body = key.split("\n")[1]
    assert body not in r.text
    stored = api.get("/api/v1/credentials").json()
    assert [c["name"] for c in stored] == ["ops"]
    assert body not in client.get("/console/credentials").text
    r = client.post("/console/credentials", data={"csrf": csrf, "name": "bad", "private_key": "not a key"})
    assert r.status_code == 422 and "private_key: not a readable private key" in r.text
    assert "not a key" not in r.text  # the refused key is not echoed either


def test_cluster_page_shows_the_planners_upgrade_plan_and_confirms_before_running(api, private_key):
    from smcp_api import versions

    cred = api.credential("ops", private_key())
    hosts = [api.host(f"node-{i}", cred["id"])["id"] for i in range(2)]
    cluster = api.cluster("c1", hosts)  # 1.34.4
    target = next(v for v in versions.supported_versions() if v.startswith("1.35."))
    client = sign_in(api, bearer(api, "operator"))
    r = client.get(f"/console/clusters/{cluster['id']}", params={"target": target})
    assert r.status_code == 200
    assert f"Upgrade plan to {target} (ready)" in r.text
    assert "kubeadm upgrade apply" in r.text and "node-1" in r.text
    r = client.get(f"/console/clusters/{cluster['id']}", params={"target": "1.33.8"})
    assert "upgrade refused" in r.text  # the planner's refusal, as the API gives it
    confirm = client.get(
        f"/console/clusters/{cluster['id']}/confirm", params={"operation": "upgrade", "target": target}
    )
    assert confirm.status_code == 200
    assert "smcp.platform.upgrade" in confirm.text and "POST /api/v1/jobs" in confirm.text
    assert f"&#34;smcp_kubernetes_version&#34;: &#34;{target}&#34;" in confirm.text
    assert api.get("/api/v1/jobs").json() == []  # nothing ran before the confirmation
    run = f"/console/clusters/{cluster['id']}/run"
    csrf = csrf_of(confirm.text)
    r = client.post(run, data={"csrf": csrf, "operation": "upgrade", "target": target})
    assert r.status_code == 422  # the test collection has no upgrade playbook: the API's own message
    assert "operation upgrade is not available in this build" in r.text
    r = client.post(run, data={"csrf": csrf, "operation": "etcd_backup"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    job = api.get("/api/v1/jobs").json()[0]
    assert r.headers["location"] == f"/console/jobs/{job['id']}"
    assert (job["operation"], job["cluster_id"]) == ("etcd_backup", cluster["id"])
    # the cluster is busy now: the API's 409 is shown on the confirmation page
    r = client.post(run, data={"csrf": csrf, "operation": "etcd_backup"})
    assert r.status_code == 409 and "is busy with etcd_backup job" in r.text


def test_lists_are_paginated_and_filtered(api, private_key):
    cred = api.credential("ops", private_key())
    for i in range(120):
        api.host(f"n-{i:03d}", cred["id"], labels={"rack": "a" if i % 2 else "b"})
    client = sign_in(api, bearer(api, "viewer"))
    first = client.get("/console/hosts")
    assert first.text.count('href="/console/hosts/') == 50 and "1 to 50 of 120" in first.text
    last = client.get("/console/hosts", params={"page": 3})
    assert "101 to 120 of 120" in last.text and "n-119" in last.text and "n-000" not in last.text
    rack = client.get("/console/hosts", params={"labels": "rack=a"})
    assert "1 to 50 of 60" in rack.text and "n-000" not in rack.text
    assert client.get("/console/hosts", params={"page": "x"}).status_code == 200


def test_the_job_stream_relays_the_apis_events_as_plain_messages(api, private_key):
    from smcp_api.jobs.leases import finish
    from smcp_api.models import JobEvent

    cred = api.credential("ops", private_key())
    host = api.host("node-1", cred["id"])
    job = api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]}).json()
    with api.services.sessions() as session:
        session.add(JobEvent(job_id=job["id"], counter=1, event="runner_on_ok", host="node-1", stdout="ok: [node-1]"))
        session.commit()
    finish(api.services, job["id"], "successful", None, 0, owner=None)
    client = sign_in(api, bearer(api, "viewer"))
    text = client.get(f"/console/jobs/{job['id']}/stream").text
    assert '"stdout":"ok: [node-1]"' in text
    assert "event: runner_on_ok" not in text and "event: end" in text
    assert client.get("/console/jobs/0123456789abcdef0123456789abcdef/stream").status_code == 404


def password_login(api: Any, username: str, password: str) -> Any:
    client = api.client
    client.cookies.clear()
    page = client.get("/console/login")
    data = {"csrf": csrf_of(page.text), "username": username, "password": password}
    return client.post("/console/login", data=data, follow_redirects=False)


def test_another_projects_cluster_stays_invisible(api, private_key):
    assert api.post("/api/v1/projects", json={"name": "blue"}).status_code == 201
    user = api.post("/api/v1/users", json={"username": "alice", "password": "correct horse battery"}).json()
    r = api.client.put(
        f"/api/v1/projects/default/members/{user['id']}", json={"role": "operator"}, headers=api.headers("admin")
    )
    assert r.status_code in (200, 201), r.text
    blue = {"X-SMCP-Project": "blue"}
    cred = api.post("/api/v1/credentials", json={"name": "bk", "private_key": private_key()}, headers=blue).json()
    host = api.post(
        "/api/v1/hosts", json={"name": "b-1", "address": "192.0.2.50", "credential_id": cred["id"]}, headers=blue
    ).json()
    cluster = api.post(
        "/api/v1/clusters",
        json={
            "name": "blue-c",
            "kubernetes_version": "1.34.4",
            "hosts": [{"host_id": host["id"], "roles": ["etcd", "control_plane", "workers"]}],
        },
        headers=blue,
    ).json()
    job = api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]}, headers=blue).json()

    assert password_login(api, "alice", "wrong password!!").status_code == 401
    r = password_login(api, "alice", "correct horse battery")
    assert r.status_code == 303, r.text
    client = api.client
    home = client.get("/console/")
    assert home.status_code == 200 and "alice" in home.text
    assert "blue-c" not in home.text
    for path in (
        f"/console/clusters/{cluster['id']}",
        f"/console/clusters/{cluster['id']}/confirm?operation=certs",
        f"/console/hosts/{host['id']}",
        f"/console/jobs/{job['id']}",
        f"/console/jobs/{job['id']}/stream",
    ):
        assert client.get(path).status_code == 404, path
    assert "b-1" not in client.get("/console/hosts").text
    assert job["id"][:12] not in client.get("/console/jobs").text
    csrf = csrf_of(home.text)
    assert client.post(f"/console/jobs/{job['id']}/cancel", data={"csrf": csrf}).status_code == 404
    assert client.post("/console/project", data={"csrf": csrf, "project": "blue"}).status_code == 404
    # the platform admin switches to blue and sees it
    admin = sign_in(api, bearer(api, "admin"))
    csrf = csrf_of(admin.get("/console/").text)
    r = admin.post("/console/project", data={"csrf": csrf, "project": "blue"}, follow_redirects=False)
    assert r.status_code == 303
    assert "blue-c" in admin.get("/console/").text
    # logging out revokes the token the password login made
    alice = password_login(api, "alice", "correct horse battery")
    token = next(v for k, v in alice.headers.multi_items() if k == "set-cookie" and v.startswith("smcp_session="))
    secret = token.split("=", 1)[1].split(";")[0].strip('"').split(":", 1)[1]
    assert api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    api.client.post("/console/logout", data={"csrf": csrf_of(api.client.get("/console/").text)})
    assert api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_login_sends_back_only_to_console_pages(api):
    client = api.client
    for wanted, landed in (
        ("/console/jobs?status=failed", "/console/jobs?status=failed"),
        ("https://evil.example/console/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console/\\\\evil.example", "/console/"),
        ("/console//evil.example", "/console/"),
    ):
        client.cookies.clear()
        page = client.get("/console/login")
        data = {"csrf": csrf_of(page.text), "token": bearer(api, "viewer"), "next": wanted}
        r = client.post("/console/login", data=data, follow_redirects=False)
        assert r.headers["location"] == landed, wanted


def test_password_login_is_throttled_by_the_api(api):
    assert api.post("/api/v1/users", json={"username": "bob", "password": "correct horse battery"}).status_code == 201
    answers = [password_login(api, "bob", "wrong password here") for _ in range(6)]
    assert [r.status_code for r in answers[:5]] == [401] * 5
    assert answers[5].status_code == 429
    assert re.search(r"try again in \d+ s", answers[5].text)
    assert password_login(api, "bob", "correct horse battery").status_code == 429  # still waiting
