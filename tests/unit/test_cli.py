"""smcpctl without a server: arg parsing, config, exit codes, rendering, SSE follow (httpx.MockTransport)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import yaml
from click.testing import CliRunner
from smcp_api import client as api
from smcp_api.cli import common, config, local
from smcp_api.cli.main import cli
from smcp_api.cli.progress import JobProgress, follow

TOKEN = "smcp_test-token"


def sse(events: list[tuple[int, str, dict[str, Any]]]) -> str:
    out = []
    for counter, name, data in events:
        out.append(f"id: {counter}\nevent: {name}\ndata: {json.dumps(data)}\n\n")
    return "".join(out)


def ev(counter: int, name: str, host: str | None = None, task: str | None = None, **data: Any) -> dict[str, Any]:
    return {"counter": counter, "event": name, "host": host, "task": task, "play": "p", "data": data}


JOB_EVENTS = [
    ev(1, "playbook_on_start"),
    ev(2, "playbook_on_task_start", task="install packages"),
    ev(3, "runner_on_start", "h1", "install packages"),
    ev(4, "runner_on_ok", "h1", "install packages", changed=True),
    ev(5, "runner_on_start", "h2", "install packages"),
    ev(6, "runner_on_failed", "h2", "install packages", res={"msg": "no apt\ncache"}),
    ev(7, "playbook_on_task_start", task="configure"),
    ev(8, "runner_on_skipped", "h1", "configure"),
    ev(9, "playbook_on_stats", ok={"h1": 1}, changed={"h1": 1}, failures={"h2": 1}, skipped={"h1": 1}),
]


class FakeApi:
    """Just enough of the v1 contract for the CLI's unit tests."""

    def __init__(self) -> None:
        self.hosts = [
            {
                "id": "a" * 32,
                "name": "h1",
                "address": "10.0.0.1",
                "roles": ["etcd", "control_plane"],
                "labels": {"s": "x"},
            },
            {"id": "b" * 32, "name": "h2", "address": "10.0.0.2", "roles": ["workers"], "labels": {}},
        ]
        self.clusters: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.final_status = "failed"
        self.stream_drops = 0  # close the first N streams after 3 events
        self.stream_headers: list[dict[str, str]] = []
        self.no_stream = False
        self.events = JOB_EVENTS
        self.host_summary: dict[str, Any] = {"h1": {"ok": 1, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 1}}

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        if path == "/healthz":
            return httpx.Response(200, json={"status": "ok", "db": "ok"})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"detail": "missing or invalid bearer token"})
        if path == "/api/v1/hosts" and method == "GET":
            return httpx.Response(200, json=self.hosts)
        if path.startswith("/api/v1/hosts/") and path.endswith("/check") and method == "POST":
            host_id = path.split("/")[4]
            job = {
                "id": "j" * 32,
                "status": "pending",
                "operation": "preflight",
                "cluster_id": None,
                "host_ids": [host_id],
            }
            self.jobs[job["id"]] = job
            return httpx.Response(202, json=job)
        if path.startswith("/api/v1/hosts/") and method == "GET":
            found = [h for h in self.hosts if h["id"] == path.split("/")[4]]
            return httpx.Response(200, json=found[0]) if found else httpx.Response(404, json={"detail": "no host"})
        if path == "/api/v1/clusters" and method == "GET":
            return httpx.Response(200, json=self.clusters)
        if path == "/api/v1/clusters" and method == "POST":
            body = json.loads(request.content)
            if any(c["name"] == body["name"] for c in self.clusters):
                return httpx.Response(409, json={"detail": f"cluster name '{body['name']}' is taken"})
            created = {"id": "c" * 32, **body}
            self.clusters.append(created)
            return httpx.Response(201, json=created)
        if path == "/api/v1/jobs" and method == "POST":
            body = json.loads(request.content)
            job = {"id": "j" * 32, "status": "pending", "cluster_id": None, "host_ids": [], **body}
            self.jobs[job["id"]] = job
            return httpx.Response(202, json=job)
        if path.startswith("/api/v1/jobs/") and path.endswith("/events/stream"):
            if self.no_stream:
                return httpx.Response(404, json={"detail": "Not Found"})
            return self._stream(request)
        if path.startswith("/api/v1/jobs/") and path.endswith("/events"):
            after = int(request.url.params.get("after") or 0)
            return httpx.Response(200, json=[e for e in self.events if e["counter"] > after][:4])
        if path.startswith("/api/v1/jobs/") and path.endswith("/cancel"):
            return httpx.Response(409, json={"detail": "job already finished (failed)"})
        if path.startswith("/api/v1/jobs/") and method == "GET":
            job_id = path.split("/")[4]
            if job_id not in self.jobs:
                return httpx.Response(404, json={"detail": f"job {job_id} not found"})
            job = dict(self.jobs[job_id])
            job.update(
                status=self.final_status,
                rc=0 if self.final_status == "successful" else 2,
                status_reason=None,
                host_summary=self.host_summary,
            )
            return httpx.Response(200, json=job)
        return httpx.Response(404, json={"detail": f"no route {method} {path}"})

    def _stream(self, request: httpx.Request) -> httpx.Response:
        self.stream_headers.append(dict(request.headers))
        after = int(request.headers.get("last-event-id") or request.url.params.get("after") or 0)
        events = [(e["counter"], e["event"], e) for e in self.events if e["counter"] > after]
        if self.stream_drops:
            self.stream_drops -= 1
            return httpx.Response(200, text=sse(events[:3]), headers={"content-type": "text/event-stream"})
        end = max(e["counter"] for e in self.events) + 1
        body = ": keepalive\n\n" + sse(events) + sse([(end, "end", {"status": self.final_status})])
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("SMCP_URL", "SMCP_TOKEN", "SMCP_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("SMCP_CONFIG", str(path))
    return path


def run(fake: FakeApi, *args: str, token: str | None = TOKEN) -> Any:
    state = common.State(transport=httpx.MockTransport(fake.handler), token=token)
    return CliRunner().invoke(cli, list(args), obj=state, catch_exceptions=False)


# ------------------------------------------------------------------------------------------- config
def test_config_precedence_flag_env_file_default(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.resolve().url == api.DEFAULT_URL
    assert config.resolve().token is None
    config.save_file(cfg, {"url": "http://file:1", "token": "from-file"})
    s = config.resolve()
    assert (s.url, s.token) == ("http://file:1", "from-file")
    monkeypatch.setenv("SMCP_URL", "http://env:2/")
    monkeypatch.setenv("SMCP_TOKEN", "from-env")
    s = config.resolve()
    assert (s.url, s.token, s.auth_source) == ("http://env:2", "from-env", "env SMCP_TOKEN")
    s = config.resolve("http://flag:3", "from-flag")
    assert (s.url, s.token) == ("http://flag:3", "from-flag")


def test_config_saved_0600_and_merged(cfg: Path) -> None:
    config.save_file(cfg, {"url": "http://a:1"})
    config.save_file(cfg, {"token": "t"})
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert yaml.safe_load(cfg.read_text()) == {"url": "http://a:1", "token": "t"}


def test_config_loose_mode_warns(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg.write_text("token: t\n")
    os.chmod(cfg, 0o644)
    assert config.load_file(cfg) == {"token": "t"}
    assert "chmod 600" in capsys.readouterr().err


def test_bad_config_file_is_usage_error(cfg: Path, fake: FakeApi) -> None:
    cfg.write_text("url: [unclosed\n")
    os.chmod(cfg, 0o600)
    result = run(fake, "host", "list", token=None)
    assert result.exit_code == common.EXIT_USAGE
    assert "not valid YAML" in result.output


# --------------------------------------------------------------------------------------- exit codes
@pytest.mark.parametrize(
    ("status", "code"),
    [(401, 3), (403, 3), (404, 4), (409, 5), (422, 2), (400, 2), (500, 3), (503, 3)],
)
def test_http_status_to_exit_code(cfg: Path, status: int, code: int) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(status, json={"detail": f"boom {status}"}))
    result = CliRunner().invoke(cli, ["cluster", "list"], obj=common.State(transport=transport, token=TOKEN))
    assert result.exit_code == code
    assert f"boom {status}" in result.output


def test_unreachable_is_3(cfg: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = CliRunner().invoke(cli, ["host", "list"], obj=common.State(transport=httpx.MockTransport(refuse)))
    assert result.exit_code == common.EXIT_API
    assert "cannot reach the smcp API" in result.output


def test_missing_token_is_3_with_hint(cfg: Path, fake: FakeApi) -> None:
    result = run(fake, "host", "list", token=None)
    assert result.exit_code == common.EXIT_API
    assert "SMCP_TOKEN" in result.output


def test_interrupt_is_130(cfg: Path) -> None:
    def interrupt(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    result = CliRunner().invoke(cli, ["host", "list"], obj=common.State(transport=httpx.MockTransport(interrupt)))
    assert result.exit_code == common.EXIT_INTERRUPTED


def test_unknown_name_is_4(cfg: Path, fake: FakeApi) -> None:
    result = run(fake, "job", "run", "prepare_hosts", "--host", "nope")
    assert result.exit_code == common.EXIT_NOT_FOUND
    assert "known: h1, h2" in result.output


def test_usage_errors_are_2(cfg: Path, fake: FakeApi) -> None:
    assert run(fake, "job", "run", "prepare_hosts").exit_code == 2  # no target
    assert run(fake, "job", "run", "explode", "--all-hosts").exit_code == 2  # unknown operation
    assert run(fake, "job", "run", "prepare_hosts", "--all-hosts", "-e", "novalue").exit_code == 2
    assert run(fake, "host", "list", "-o", "xml").exit_code == 2


def test_cancel_finished_job_is_5(cfg: Path, fake: FakeApi) -> None:
    fake.jobs["j" * 32] = {"id": "j" * 32, "operation": "preflight"}
    result = run(fake, "job", "cancel", "j" * 32)
    assert result.exit_code == common.EXIT_CONFLICT
    assert "already finished" in result.output


# ----------------------------------------------------------------------------------------- rendering
def test_host_list_table_json_yaml(cfg: Path, fake: FakeApi) -> None:
    table = run(fake, "host", "list")
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ADDRESS", "USER"]
    assert any(line.startswith("h1") and "etcd,control_plane" in line for line in lines)
    as_json = run(fake, "host", "list", "-o", "json")
    assert [h["name"] for h in json.loads(as_json.output)] == ["h1", "h2"]
    as_yaml = run(fake, "host", "list", "-o", "yaml", "-l", "s=x")
    assert [h["name"] for h in yaml.safe_load(as_yaml.output)] == ["h1"]


# ---------------------------------------------------------------------------------------- SSE/progress
def test_parse_sse_multiline_comments_and_ids() -> None:
    lines = [": hi", "id: 7", "event: runner_on_ok", 'data: {"a":', "data: 1}", "", "data: x", ""]
    assert list(api.parse_sse(iter(lines))) == [("7", "runner_on_ok", '{"a":\n1}'), (None, "message", "x")]


def test_stream_resumes_with_last_event_id_without_duplicates(fake: FakeApi) -> None:
    fake.jobs["j" * 32] = {"id": "j" * 32, "operation": "prepare_hosts"}
    fake.final_status = "running"  # the first stream ends early while the job still runs
    fake.stream_drops = 1
    c = api.SmcpClient(token=TOKEN, transport=httpx.MockTransport(fake.handler), sleep=lambda s: None)
    seen = [event.counter for event in c.stream_events("j" * 32)]
    assert seen == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert fake.stream_headers[1]["last-event-id"] == "3"


def test_without_stream_route_events_are_polled(fake: FakeApi) -> None:
    fake.jobs["j" * 32] = {"id": "j" * 32, "operation": "prepare_hosts"}
    fake.no_stream = True
    fake.final_status = "successful"
    c = api.SmcpClient(token=TOKEN, transport=httpx.MockTransport(fake.handler), sleep=lambda s: None)
    events = list(c.stream_events("j" * 32))
    assert [e.counter for e in events[:-1]] == list(range(1, 10))
    assert (events[-1].event, events[-1].data) == ("end", {"status": "successful"})


def test_progress_counts_and_failure_lines() -> None:
    progress = JobProgress(job_id="j1", operation="prepare_hosts")
    printed: list[str] = []
    for record in JOB_EVENTS:
        printed += progress.feed(api.Event(record["counter"], record["event"], record))
    assert printed == [
        "TASK [install packages]",
        "FAILED h2: [install packages] no apt cache",
        "TASK [configure]",
    ]
    assert (progress.hosts["h1"].ok, progress.hosts["h1"].changed, progress.hosts["h1"].skipped) == (1, 1, 1)
    assert progress.hosts["h2"].failed == 1
    assert progress.tasks == 2
    assert progress.recap_lines()[1].split() == ["h2", "ok=0", "changed=0", "failed=1", "unreachable=0", "skipped=0"]


def test_progress_live_table_renders_hosts(tmp_path: Path) -> None:
    progress = JobProgress(job_id="j1", operation="prepare_hosts")
    events = [api.Event(r["counter"], r["event"], r) for r in JOB_EVENTS]
    with open(tmp_path / "out", "w") as out:
        follow(progress, events, tty=True, out=out)
    text = (tmp_path / "out").read_text()
    assert "FAILED h2" in text
    assert "HOST" in text and "CURRENT TASK" in text


def test_job_run_wait_plain_progress_and_exit_1_on_failure(cfg: Path, fake: FakeApi) -> None:
    result = run(fake, "job", "run", "prepare_hosts", "-l", "s=x", "--forks", "5", "--wait")
    assert result.exit_code == common.EXIT_JOB_FAILED
    body = json.loads(fake.requests[1].content)
    assert body == {"operation": "prepare_hosts", "host_ids": ["a" * 32], "params": {"forks": 5}}
    out = result.output
    assert "TASK [install packages]" in out
    assert "FAILED h2: [install packages] no apt cache" in out
    assert "recap: h1  ok=1  changed=1" in out
    assert out.rstrip().splitlines()[-1].startswith(f"job {'j' * 32} prepare_hosts: failed")


def test_job_run_wait_success_is_0(cfg: Path, fake: FakeApi) -> None:
    fake.final_status = "successful"
    result = run(fake, "job", "run", "prepare_hosts", "--all-hosts", "--wait", "-o", "json")
    assert result.exit_code == 0
    assert json.loads(fake.requests[1].content)["host_ids"] == ["a" * 32, "b" * 32]


# -------------------------------------------------------------------------------------- cluster file
def test_cluster_file_bad_yaml_names_line_and_column(cfg: Path, fake: FakeApi, tmp_path: Path) -> None:
    f = tmp_path / "cluster.yaml"
    f.write_text("name: demo\nhosts:\n  - name: h1\n   roles: [etcd]\n")
    result = run(fake, "cluster", "create", "-f", str(f))
    assert result.exit_code == common.EXIT_USAGE
    assert "line 4, column 4" in result.output


def test_cluster_file_resolves_host_names(cfg: Path, fake: FakeApi, tmp_path: Path) -> None:
    f = tmp_path / "cluster.yaml"
    f.write_text(
        "name: demo\nkubernetes_version: 1.34.4\ncni: calico\n"
        "hosts:\n  - name: h1\n    roles: [etcd, control_plane]\n  - h2\n"
    )
    result = run(fake, "cluster", "create", "-f", str(f), "-o", "json")
    assert result.exit_code == 0, result.output
    posted = json.loads(fake.requests[-1].content)
    assert posted["hosts"] == [
        {"host_id": "a" * 32, "roles": ["etcd", "control_plane"]},
        {"host_id": "b" * 32, "roles": ["workers"]},
    ]
    again = run(fake, "cluster", "create", "-f", str(f))
    assert again.exit_code == common.EXIT_CONFLICT


def test_cluster_file_unknown_host_is_usage_error(cfg: Path, fake: FakeApi, tmp_path: Path) -> None:
    f = tmp_path / "cluster.yaml"
    f.write_text("name: demo\nkubernetes_version: 1.34.4\nhosts: [ghost]\n")
    result = run(fake, "cluster", "create", "-f", str(f))
    assert result.exit_code == common.EXIT_USAGE
    assert "hosts[0]" in result.output and "ghost" in result.output


# -------------------------------------------------------------------------------------------- sandbox
def test_sandbox_host_bodies_keep_host_key_checking(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("sb-1,10.9.0.2 ssh-ed25519 AAAA1\nsb-2,10.9.0.3 ssh-ed25519 AAAA2\n")
    info = {
        "name": "sb",
        "user": "smcp",
        "port": 22,
        "known_hosts": str(kh),
        "groups": {"etcd": ["sb-1"], "control_plane": ["sb-1"], "workers": ["sb-2"]},
        "hosts": [{"name": "sb-1", "ip": "10.9.0.2"}, {"name": "sb-2", "ip": "10.9.0.3"}],
    }
    bodies = local.sandbox_host_bodies(info, "cred1")
    assert [b["roles"] for b in bodies] == [["etcd", "control_plane"], ["workers"]]
    first = bodies[0]
    assert first["vars"]["smcp_sandbox"] is True
    assert first["vars"] == {
        "ansible_python_interpreter": "/usr/bin/python3",
        "smcp_sandbox": True,
        "smcp_node_ip": "10.9.0.2",
    }
    assert first["known_hosts"] == "sb-1,10.9.0.2 ssh-ed25519 AAAA1\n"
    assert first["labels"] == {"sandbox": "sb"} and first["credential_id"] == "cred1"


def test_job_logs_follow_prints_ansible_like_lines_and_job_exit_code(cfg: Path, fake: FakeApi) -> None:
    fake.jobs["j" * 32] = {"id": "j" * 32, "operation": "prepare_hosts"}
    result = run(fake, "job", "logs", "-f", "j" * 32)
    assert result.exit_code == common.EXIT_JOB_FAILED
    lines = [line for line in result.output.splitlines() if line]
    assert lines[:4] == [
        "TASK [install packages]",
        "changed: [h1]",
        "fatal: [h2]: FAILED! no apt cache",
        "TASK [configure]",
    ]
    assert "skipping: [h1]" in lines
    assert "PLAY RECAP" in lines
    assert lines[-1] == f"job {'j' * 32}: failed (rc=2)"


def test_rescued_failure_is_not_a_failed_host() -> None:
    progress = JobProgress(job_id="j1")
    records = [
        ev(1, "runner_on_failed", "h1", "install", res={"msg": "no package"}),
        ev(2, "runner_on_ok", "h1", "install fallback", changed=True),
        ev(3, "playbook_on_stats", ok={"h1": 1}, changed={"h1": 1}, failures={}, rescued={"h1": 1}),
    ]
    lines = [line for r in records for line in progress.feed(api.Event(r["counter"], r["event"], r))]
    assert lines == ["FAILED h1: [install] no package"]  # shown live, as ansible does
    assert progress.failed_hosts() == []
    assert progress.recap_lines() == ["h1  ok=1  changed=1  failed=0  unreachable=0  skipped=0  rescued=1"]


def test_refs_by_name_id_or_prefix() -> None:
    items = [{"id": "abcdef01", "name": "one"}, {"id": "abcdef02", "name": "two"}]
    assert common.resolve_ref("host", "two", items)["id"] == "abcdef02"
    assert common.resolve_ref("host", "abcdef01", items)["name"] == "one"
    assert common.resolve_ref("host", "abcdef0", items[:1])["name"] == "one"
    with pytest.raises(click.UsageError, match="ambiguous"):
        common.resolve_ref("host", "abcdef", items)
    with pytest.raises(api.NotFound, match="known: one, two"):
        common.resolve_ref("host", "three", items)


def test_declined_confirmation_deletes_nothing(cfg: Path, fake: FakeApi) -> None:
    fake.clusters.append({"id": "c" * 32, "name": "demo"})
    state = common.State(transport=httpx.MockTransport(fake.handler), token=TOKEN)
    result = CliRunner().invoke(cli, ["cluster", "delete", "demo"], obj=state, input="n\n")
    assert result.exit_code == common.EXIT_INTERRUPTED
    assert not [r for r in fake.requests if r.method == "DELETE"]


def test_event_line_prefers_the_apis_stdout() -> None:
    from smcp_api.cli.progress import event_line

    with_out = {"counter": 1, "event": "runner_on_ok", "host": "h1", "stdout": "ok: [h1] => real", "data": {}}
    silent = {"counter": 2, "event": "runner_on_start", "host": "h1", "stdout": "", "data": {}}
    made_up = {"counter": 3, "event": "runner_on_ok", "host": "h1", "data": {"res": {"changed": True}}}
    assert [event_line(api.Event(r["counter"], r["event"], r)) for r in (with_out, silent, made_up)] == [
        "ok: [h1] => real",
        None,
        "changed: [h1]",
    ]


def test_stream_retries_after_a_connection_error(fake: FakeApi) -> None:
    fake.jobs["j" * 32] = {"id": "j" * 32, "operation": "prepare_hosts"}
    fake.final_status = "successful"
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events/stream"):
            calls["n"] += 1
            if calls["n"] == 1:
                raise httpx.ConnectError("connection reset", request=request)
        return fake.handler(request)

    slept: list[float] = []
    c = api.SmcpClient(token=TOKEN, transport=httpx.MockTransport(flaky), sleep=slept.append)
    assert [e.counter for e in c.stream_events("j" * 32)] == list(range(1, 11))
    assert calls["n"] == 2 and slept == [0.5]


def test_config_show_masks_and_set_checks_the_token(cfg: Path, fake: FakeApi) -> None:
    state = common.State(transport=httpx.MockTransport(fake.handler))
    bad = CliRunner().invoke(cli, ["config", "set", "--token", "smcp_wrong"], obj=state)
    assert bad.exit_code == common.EXIT_API and not cfg.exists()
    good = CliRunner().invoke(cli, ["config", "set", "--token", TOKEN], obj=state)
    assert good.exit_code == 0, good.output
    assert yaml.safe_load(cfg.read_text()) == {"token": TOKEN} and stat.S_IMODE(cfg.stat().st_mode) == 0o600
    shown = CliRunner().invoke(cli, ["config", "show", "-o", "json"], obj=common.State())
    data = json.loads(shown.output)
    assert TOKEN not in shown.output and data["token_from"] == str(cfg) and data["url_from"] == "default"


def test_cli_operations_are_the_apis() -> None:
    """smcpctl and the API read one operations table; the API's Literal type lists the same names."""
    import typing

    from smcp_api.cli.jobs import OPERATIONS as cli_operations
    from smcp_api.schemas import OPERATIONS, Operation

    assert cli_operations == tuple(OPERATIONS) == typing.get_args(Operation)


# ------------------------------------------------------------------------ preflight findings and blame
PREFLIGHT_REPORT = {
    "failed": True,
    "problems": [
        {"id": "unreachable", "severity": "failure", "what": "no preflight result for this host", "host": "h2"},
        {"id": "swap", "severity": "warning", "what": "swap is on", "host": "h1"},
    ],
}
UNREACHABLE_EVENTS = [  # the shape of a real preflight run with h2 unreachable (recorded, trimmed)
    ev(1, "playbook_on_task_start", task="Check the host"),
    ev(2, "runner_on_unreachable", "h2", "Check the host", role="preflight", res={"msg": "Connection refused"}),
    ev(3, "runner_on_ok", "h1", "Check the host", role="preflight", res={"preflight": {"failures": []}}),
    ev(4, "playbook_on_task_start", task="Run the cross-host checks"),
    ev(
        5,
        "runner_on_ok",
        "h1",
        "Run the cross-host checks",
        role="preflight",
        task_action="ansible.builtin.set_fact",
        res={"ansible_facts": {"_preflight_report": PREFLIGHT_REPORT}},
    ),
    ev(6, "playbook_on_task_start", task="Fail before any change"),
    ev(
        7,
        "runner_on_failed",
        "h1",
        "Fail before any change",
        role="preflight",
        task_action="ansible.builtin.fail",
        res={"msg": "preflight failed: 1 failure(s) (on h2)"},
    ),
    ev(8, "playbook_on_stats", ok={"h1": 2}, failures={"h1": 1}, dark={"h2": 1}),
]


def test_unreachable_host_does_not_make_the_healthy_one_failed(cfg: Path, fake: FakeApi) -> None:
    fake.events = UNREACHABLE_EVENTS
    fake.host_summary = {
        "h1": {"ok": 2, "changed": 0, "failed": 1, "unreachable": 0, "skipped": 0},
        "h2": {"ok": 0, "changed": 0, "failed": 0, "unreachable": 1, "skipped": 0},
    }
    result = run(fake, "job", "run", "preflight", "--all-hosts", "--wait")
    assert result.exit_code == common.EXIT_JOB_FAILED
    last = result.output.rstrip().splitlines()[-1]
    assert ": failed" in last and "unreachable hosts: h2," in last and "failed hosts" not in last, last
    assert "FAILED preflight report (run once, on h1): preflight failed" in result.output


def test_failed_hosts_follow_the_report_and_real_task_failures() -> None:
    progress = JobProgress(job_id="j1")
    report = {"failed": True, "problems": [{"id": "memory", "severity": "failure", "host": "h2"}]}
    records = [
        ev(1, "runner_on_ok", "h1", "cross", role="preflight", res={"ansible_facts": {"_preflight_report": report}}),
        ev(
            2,
            "runner_on_failed",
            "h1",
            "report",
            role="preflight",
            task_action="ansible.builtin.fail",
            res={"msg": "x"},
        ),
        ev(
            3,
            "runner_on_failed",
            "h3",
            "install",
            role="host_prep",
            task_action="ansible.builtin.apt",
            res={"msg": "y"},
        ),
        ev(4, "playbook_on_stats", ok={"h1": 1, "h2": 1}, failures={"h1": 1, "h3": 1}, dark={}),
    ]
    for r in records:
        progress.feed(api.Event(r["counter"], r["event"], r))
    assert progress.failed_hosts() == ["h2", "h3"]  # named by the report; a task of its own failed
    assert progress.unreachable_hosts() == []


def test_host_check_prints_findings_as_a_table(cfg: Path, fake: FakeApi) -> None:
    fake.final_status = "successful"
    fake.hosts[0]["last_preflight"] = {
        "status": "failed",
        "at": "2026-12-01T10:00:00",
        "job_id": "j" * 32,
        "failures": [
            {
                "id": "memory",
                "severity": "failure",
                "what": "too little memory for role control_plane",
                "found": "512 MiB",
                "need": "at least 1700 MiB",
                "fix": "give the machine more memory",
                "msg": "x",
            }
        ],
        "warnings": [
            {"id": "swap", "severity": "warning", "what": "swap is on", "fix": "none needed: host_prep turns it off"}
        ],
    }
    fake.hosts[1]["last_preflight"] = {
        "status": "unreachable",
        "failures": [{"task": "Check the host", "msg": "Connection refused"}],
        "warnings": [],
    }
    result = run(fake, "host", "check", "h1", "h2", "--wait")
    out = result.output
    assert "{'" not in out and "'id'" not in out  # no Python dicts
    lines = [line.split() for line in out.splitlines()]
    assert ["HOST", "CHECK", "SEVERITY", "PROBLEM", "FIX"] in lines
    rows = [" ".join(words) for words in lines if words and words[0] in ("h1", "h2") and len(words) > 3]
    assert rows == [
        "h1 memory failure too little memory for role control_plane (found 512 MiB, need at least 1700 MiB) "
        "give the machine more memory",
        "h1 swap warning swap is on none needed: host_prep turns it off",
        "h2 Check the host failure Connection refused -",
    ]
    one = run(fake, "host", "check", "h1", "--wait", "-o", "json")
    assert json.loads(one.stdout)["status"] == "successful"


def test_host_show_lists_the_last_preflight_as_a_table(cfg: Path, fake: FakeApi) -> None:
    fake.hosts[0]["last_preflight"] = {
        "status": "passed",
        "failures": [],
        "warnings": [{"id": "swap", "what": "swap is on"}],
    }
    out = run(fake, "host", "show", "h1").output
    assert "{'" not in out and "last preflight: passed" in out
    assert any(line.split()[:4] == ["h1", "swap", "warning", "swap"] for line in out.splitlines() if line.strip())


def test_cluster_file_unquoted_version_says_quote_it(cfg: Path, fake: FakeApi, tmp_path: Path) -> None:
    f = tmp_path / "cluster.yaml"
    f.write_text("name: demo\nkubernetes_version: 1.34\nhosts: [h1]\n")
    result = run(fake, "cluster", "create", "-f", str(f))
    assert result.exit_code == common.EXIT_USAGE
    assert f"{f}, line 2: kubernetes_version: 1.34 is read by YAML as a number; quote it" in result.output
    assert 'e.g. kubernetes_version: "1.34.4" (releases: 1.33.' in result.output
    assert not [r for r in fake.requests if r.method == "POST"]


# ----------------------------------------------------------------------------------------- file modes
def test_config_dir_loose_mode_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "smcp"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    config.save_file(directory / "config.yaml", {"url": "http://x"})
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "config.yaml").stat().st_mode) == 0o600
