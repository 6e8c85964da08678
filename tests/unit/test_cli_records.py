"""smcpctl's per-record commands declared once in cli/common.py (show, delete) and the optional parts of bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from smcp_api import client as api
from smcp_api.cli import common
from smcp_api.cli.main import cli

RECORDS = {
    "hosts": [{"id": "a" * 32, "name": "h1", "address": "10.0.0.1"}],
    "credentials": [{"id": "c" * 32, "name": "key1", "kind": "ssh_private_key"}],
    "tokens": [{"id": "t" * 32, "name": "ci", "role": "operator"}],
}


class Recorder:
    """Answers GET of the lists above, DELETE with 204 and POST with the body it got; keeps every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        parts = request.url.path.split("/")[3:]  # /api/v1/<kind>[/<id>]
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.method == "POST":
            return httpx.Response(201, json={"id": "n" * 32, **json.loads(request.content)})
        if len(parts) == 1:
            return httpx.Response(200, json=RECORDS.get(parts[0], []))
        if parts[0] == "jobs" and parts[1] == "j" * 32:
            return httpx.Response(200, json={"id": "j" * 32, "operation": "preflight", "status": "successful"})
        return httpx.Response(404, json={"detail": f"no {parts[0]} {parts[1]}"})


def run(recorder: Recorder, *args: str) -> Any:
    state = common.State(url="http://api", token="t", transport=httpx.MockTransport(recorder.handler))
    return CliRunner().invoke(cli, list(args), obj=state, catch_exceptions=False)


@pytest.mark.parametrize(
    ("group", "ref", "path", "said"),
    [
        ("host", "h1", "/api/v1/hosts/" + "a" * 32, "host h1 deleted"),
        ("credential", "key1", "/api/v1/credentials/" + "c" * 32, "credential key1 deleted"),
        ("token", "ci", "/api/v1/tokens/" + "t" * 32, "token ci deleted"),
    ],
)
def test_delete_finds_the_record_by_name_and_deletes_its_id(group: str, ref: str, path: str, said: str) -> None:
    recorder = Recorder()
    result = run(recorder, group, "delete", ref)
    assert result.exit_code == 0, result.output
    assert result.output == f"{said}\n"
    assert [(r.method, r.url.path) for r in recorder.requests if r.method != "GET"] == [("DELETE", path)]


def test_delete_of_an_unknown_name_deletes_nothing() -> None:
    recorder = Recorder()
    result = CliRunner().invoke(
        cli,
        ["host", "delete", "nope"],
        obj=common.State(url="http://api", token="t", transport=httpx.MockTransport(recorder.handler)),
    )
    assert result.exit_code == common.EXIT_NOT_FOUND
    assert "no host named or with id 'nope' (known: h1)" in result.output
    assert all(r.method == "GET" for r in recorder.requests)


def test_show_prints_the_record_as_json_or_its_table() -> None:
    recorder = Recorder()
    shown = run(recorder, "job", "show", "j" * 32, "-o", "json")
    assert json.loads(shown.output) == {"id": "j" * 32, "operation": "preflight", "status": "successful"}
    table = run(recorder, "job", "show", "j" * 32).output
    assert any(line.split() == ["operation", "preflight"] for line in table.splitlines())
    help_text = run(recorder, "job", "show", "--help").output
    assert "job show [OPTIONS] JOB_REF\n\n  Show a job with its per-host recap.\n" in help_text


def test_optional_body_parts_are_sent_only_when_set() -> None:
    assert api.present(a=None, b="", c=0, d=[], e={}, f="x", g=3) == {"f": "x", "g": 3}
    recorder = Recorder()
    run(recorder, "credential", "add", "--name", "k2", "--key-file", "/dev/null")
    run(recorder, "job", "run", "preflight", "--host", "h1", "--batch-size", "2", "-e", "x=1")
    bodies = [json.loads(r.content) for r in recorder.requests if r.method == "POST"]
    assert bodies == [
        {"name": "k2", "kind": "ssh_private_key", "private_key": ""},
        {"operation": "preflight", "host_ids": ["a" * 32], "params": {"batch_size": 2, "extra_vars": {"x": 1}}},
    ]
