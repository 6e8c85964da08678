"""The console in a real browser: Debian's chromium driven by Selenium against a running smcp-api and sandbox hosts.

Heavy (a sandbox host, real jobs): run it alone under the lock, e.g.
`flock /tmp/smcp-heavy.lock pytest -p no:cacheprovider tests/api/test_console_browser.py -q -s`.

One story, in order: sign in with the admin token, upload the sandbox's SSH key as a credential, add the sandbox
host with its pinned host key through the form, run a host check and see its log grow while it runs, cancel a
running job, look at every page; then a viewer's console offers no action, and a cluster of another project stays
invisible (404 when asked for by id). A screenshot of each page lands in tests/artifacts/console/ (printed).

No browser or driver is downloaded: the test passes /usr/bin/chromedriver and /usr/bin/chromium (packages
chromium and chromium-driver, installed by scripts/setup.sh) and runs selenium-manager offline.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from smcp_api.core.config import Settings
from smcp_api.main import create_app

from tests.api.sandbox_api import live_settings, sandbox_up

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts" / "console"
SANDBOX = "conbr"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 600.0  # the longest a step may take on a loaded machine (a wait, never an assertion on time)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(settings: Settings) -> Iterator[tuple[str, Any]]:
    """smcp-api (with its job worker) on a free local port, served by uvicorn as in production: (url, app)."""
    app = create_app(settings, start_worker=True)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("smcp-api did not start")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: install Debian's chromium and chromium-driver (make setup)")
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never download a browser or a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    print(f"\nconsole screenshots: {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="module")
def stack(tmp_path_factory, reachable_dir, job_user_prefix) -> Iterator[dict[str, Any]]:
    """A sandbox host and a running smcp-api; nothing registered yet (the browser does it)."""
    tmp = tmp_path_factory.mktemp("console")
    settings = live_settings(tmp, reachable_dir, job_user_prefix)
    with sandbox_up(SANDBOX, 1) as sandbox, serve(settings) as (url, app):
        token = app.state.smcp.bootstrap_token
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        yield {"url": url, "app": app, "sandbox": sandbox, "token": token, "http": http}
        http.close()


class Page:
    """The browser on the console, with the few moves the story needs."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait

        self.d, self.base, self.dir = driver, base, shots
        self.By, self.Select, self.Wait = By, Select, WebDriverWait
        self.count = 0

    def open(self, path: str) -> None:
        self.d.get(self.base + path)

    def el(self, css: str) -> Any:
        return self.d.find_element(self.By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        return self.d.find_elements(self.By.CSS_SELECTOR, css)

    def fill(self, fields: dict[str, str]) -> None:
        for name, value in fields.items():
            box = self.el(f"[name='{name}']")
            box.clear()
            box.send_keys(value)

    def submit(self, css: str = "main form.card button[type=submit]") -> None:
        self.el(css).click()

    def wait(self, what: Any, timeout: float = WAIT) -> Any:
        return self.Wait(self.d, timeout, poll_frequency=0.2).until(lambda _: what())

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{name}.png"
        self.d.save_screenshot(str(path))
        return path

    def job_status(self) -> str:
        """The job page's status (its element is replaced every 2 s by htmx: read again when it went stale)."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

        try:
            return str(self.el("#job-status").get_attribute("data-status"))
        except (StaleElementReferenceException, NoSuchElementException):
            return ""

    def text(self) -> str:
        return str(self.el("main").text)


def sign_in(page: Page, token: str) -> None:
    page.d.delete_all_cookies()
    page.open("/console/login")
    page.fill({"token": token})
    page.submit()
    page.wait(lambda: page.d.current_url.endswith("/console/"))


def test_console_in_a_real_browser(browser, stack, shots):
    page = Page(browser, stack["url"], shots)
    sandbox, http = stack["sandbox"], stack["http"]
    sb_host = sandbox.hosts[0]

    # -- sign in with the admin token
    page.open("/console/")
    page.wait(lambda: "/console/login" in page.d.current_url)
    page.shot("login")
    page.fill({"token": stack["token"]})
    page.submit()
    page.wait(lambda: page.d.current_url.endswith("/console/"))
    assert "Overview" in page.text()
    page.shot("overview-empty")

    # -- a credential: the sandbox's key file, uploaded; never shown again
    page.open("/console/credentials")
    page.fill({"name": "sandbox-key"})
    page.el("#key_file").send_keys(str(sandbox.key))
    page.submit()
    page.wait(lambda: "never be shown again" in page.text())
    key_body = sandbox.key.read_text().splitlines()[1]
    assert key_body not in page.d.page_source
    page.shot("credential-added")

    # -- a host through the form, with its pinned host key and the sandbox's variables
    known = "\n".join(
        line for line in sandbox.known_hosts.read_text().splitlines() if line.split(",")[0] == sb_host.name
    )
    page.open("/console/hosts/new")
    page.fill(
        {
            "name": sb_host.name,
            "address": sb_host.ip,
            "ssh_user": sandbox.user,
            "ssh_port": str(sandbox.port),
            "labels": f"sandbox={SANDBOX}",
            "vars": f"smcp_sandbox: true\nsmcp_node_ip: {sb_host.ip}\nansible_python_interpreter: /usr/bin/python3",
            "known_hosts": known,
        }
    )
    page.Select(page.el("#credential_id")).select_by_index(0)
    for role in ("etcd", "control_plane", "workers"):
        page.el(f"input[name=roles][value={role}]").click()
    page.submit()
    page.wait(lambda: "/console/hosts/" in page.d.current_url and "/new" not in page.d.current_url)
    assert "Pinned SSH host key" in page.text() and "SHA256:" in page.text()
    host_url = page.d.current_url
    page.shot("host-added")

    # -- a host check: the log and the per-host table grow while it runs
    page.el("form[action$='/check'] button").click()
    page.wait(lambda: "/console/jobs/" in page.d.current_url)
    status = page.job_status
    log_size = lambda: len(page.el("#job-log").text)  # noqa: E731
    sizes_while_running = []
    page.wait(lambda: status() == "running" or log_size() > 0)
    while status() in ("pending", "running", ""):
        size = log_size()
        if not sizes_while_running or size != sizes_while_running[-1]:
            sizes_while_running.append(size)
            if len(sizes_while_running) == 3:
                page.shot("job-running")
        time.sleep(0.3)
    page.wait(lambda: "The job ended" in page.el("#log-state").text)
    grown = [s for s in sizes_while_running if s > 0]
    assert len(grown) >= 2 and grown == sorted(grown), sizes_while_running  # seen growing before the end
    assert status() == "successful", page.text()[-3000:]
    assert "PLAY RECAP" in page.el("#job-log").text
    assert sb_host.name in page.el("#progress table").text
    assert sb_host.name in page.el("#live-hosts").text  # the per-host counts the events built while it ran
    page.shot("job-finished")

    page.d.get(host_url)
    assert "passed" in page.el("section[aria-labelledby=pf-h]").text
    page.shot("host-preflight-findings")

    # -- cancel a running job (prepare_hosts, started through the API)
    host_id = host_url.rstrip("/").rsplit("/", 1)[1]
    job = http.post("/api/v1/jobs", json={"operation": "prepare_hosts", "host_ids": [host_id]}).json()
    page.open(f"/console/jobs/{job['id']}")
    page.wait(lambda: status() == "running")
    page.shot("job-before-cancel")
    page.el("#cancel-job").click()
    page.wait(lambda: status() == "canceled")
    assert http.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "canceled"
    page.shot("job-canceled")

    # -- the other pages
    host = http.get(f"/api/v1/hosts/{host_id}").json()
    cluster = http.post(
        "/api/v1/clusters",
        json={
            "name": "demo",
            "kubernetes_version": "1.34.4",
            "pod_cidr": "10.244.0.0/16",
            "hosts": [{"host_id": host["id"], "roles": ["etcd", "control_plane", "workers"]}],
        },
    ).json()
    for path, name, text in (
        ("/console/", "overview", "demo"),
        ("/console/hosts", "hosts", sb_host.name),
        (f"/console/hosts?labels=sandbox%3D{SANDBOX}", "hosts-filtered", sb_host.name),
        (f"/console/clusters/{cluster['id']}?target=1.35.1", "cluster-upgrade-plan", "Upgrade plan to 1.35.1"),
        (
            f"/console/clusters/{cluster['id']}/confirm?operation=upgrade&target=1.35.1",
            "confirm-upgrade",
            "POST /api/v1/jobs",
        ),
        ("/console/jobs", "jobs", "prepare_hosts"),
        ("/console/jobs?status=canceled", "jobs-filtered", "canceled"),
        ("/console/credentials", "credentials", "sandbox-key"),
        ("/console/tokens", "tokens", "New token"),
        ("/console/users", "users", "admin"),
        ("/console/projects", "projects", "default"),
        ("/console/audit", "audit", "Audit log"),
    ):
        page.open(path)
        assert text in page.text(), (path, page.text()[:2000])
        page.shot(name)
    page.d.set_window_size(390, 844)  # a phone
    page.open(f"/console/clusters/{cluster['id']}")
    page.shot("cluster-phone")
    page.d.set_window_size(1280, 1000)

    # -- a viewer: the same pages, no action offered
    viewer = http.post("/api/v1/tokens", json={"name": "console-viewer", "role": "viewer"}).json()["token"]
    sign_in(page, viewer)
    for path in (
        host_url.split(stack["url"], 1)[1],
        f"/console/jobs/{job['id']}",
        f"/console/clusters/{cluster['id']}",
    ):
        page.open(path)
        assert page.all("main form[method=post]") == [], path
        assert page.all("a[href*='/confirm'], a[href='/console/hosts/new']") == [], path
    page.shot("viewer-cluster-no-actions")
    page.open("/console/credentials")
    assert page.all("#private_key") == []

    # -- another project's cluster stays invisible
    assert http.post("/api/v1/projects", json={"name": "blue"}).status_code == 201
    blue = {"X-SMCP-Project": "blue"}
    cred = http.post(
        "/api/v1/credentials", json={"name": "blue-key", "private_key": sandbox.key.read_text()}, headers=blue
    ).json()
    other = http.post(
        "/api/v1/hosts", json={"name": "blue-1", "address": "192.0.2.99", "credential_id": cred["id"]}, headers=blue
    ).json()
    hidden = http.post(
        "/api/v1/clusters",
        json={
            "name": "blue-cluster",
            "kubernetes_version": "1.34.4",
            "hosts": [{"host_id": other["id"], "roles": ["etcd", "control_plane", "workers"]}],
        },
        headers=blue,
    ).json()
    page.open("/console/")
    assert "demo" in page.text() and "blue-cluster" not in page.text()
    page.open(f"/console/clusters/{hidden['id']}")
    assert "Not found" in page.text() and "blue-cluster" not in page.d.page_source
    page.shot("other-project-cluster-404")
