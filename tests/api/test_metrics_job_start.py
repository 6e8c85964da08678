"""smcp_job_start_seconds (issue 14: where the time from a job's creation to its playbook goes): the worker reads
the launcher's spawn mark from the job directory. A job-user process can write that file, so only a bounded,
plausible time counts; Ansible's playbook_on_start comes from the EventSink (the first one)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smcp_api.jobs import runner
from smcp_api.jobs.launch import SPAWNED_FILE
from smcp_api.main import build_services
from smcp_api.models import Job


def _counts(services) -> dict[str, str]:
    lines = services.metrics.job_start_lines()
    return dict(line.rsplit(" ", 1) for line in lines if line.startswith("smcp_job_start_seconds_"))


@pytest.fixture
def services(settings):
    made = build_services(settings)
    yield made
    made.engine.dispose()


def test_a_job_start_is_observed_from_the_mark_and_the_first_playbook_start(services, tmp_path: Path) -> None:
    created = datetime.now(UTC) - timedelta(seconds=2)
    job = Job(operation="preflight", created_at=created)
    (tmp_path / SPAWNED_FILE).write_text(f"{(created + timedelta(seconds=0.04)).timestamp():.6f}")
    sink = runner.EventSink(services, "j1", [])
    for offset in (0.5, 1.5):  # a second playbook_on_start (an imported playbook) does not count
        at = (created + timedelta(seconds=offset)).replace(tzinfo=None).isoformat()
        sink({"event": "playbook_on_start", "counter": 1, "created": at, "event_data": {}})
    runner._observe_start(services, job, tmp_path, sink)
    got = _counts(services)
    assert got['smcp_job_start_seconds_bucket{until="playbook_spawned",le="0.025"}'] == "0"
    assert got['smcp_job_start_seconds_bucket{until="playbook_spawned",le="0.05"}'] == "1"
    assert got['smcp_job_start_seconds_sum{until="playbook_spawned"}'] == "0.040"
    assert got['smcp_job_start_seconds_sum{until="playbook_on_start"}'] == "0.500"
    assert got['smcp_job_start_seconds_count{until="playbook_on_start"}'] == "1"


@pytest.mark.parametrize("mark", ["not a time", "1e400", "9" * 4000, "4102444800.0", "0.0"])
def test_an_implausible_spawn_mark_is_not_observed(services, tmp_path: Path, mark: str) -> None:
    """Garbage, an overflow, a huge file, a time in the future (2100) or long before the job: nothing counted."""
    job = Job(operation="preflight", created_at=datetime.now(UTC) - timedelta(seconds=1))
    (tmp_path / SPAWNED_FILE).write_text(mark)
    runner._observe_start(services, job, tmp_path, runner.EventSink(services, "j2", []))
    assert _counts(services)['smcp_job_start_seconds_count{until="playbook_spawned"}'] == "0"


def test_a_spawn_mark_that_is_a_fifo_or_a_symlink_is_not_read(services, tmp_path: Path) -> None:
    """The job user owns the directory: a FIFO would block the worker's thread, a symlink would read another file."""
    created = datetime.now(UTC) - timedelta(seconds=1)
    job = Job(operation="preflight", created_at=created)
    good = tmp_path / "elsewhere"
    good.write_text(f"{(created + timedelta(seconds=0.05)).timestamp():.6f}")
    (tmp_path / SPAWNED_FILE).symlink_to(good)
    runner._observe_start(services, job, tmp_path, runner.EventSink(services, "j3", []))
    (tmp_path / SPAWNED_FILE).unlink()
    os.mkfifo(tmp_path / SPAWNED_FILE)  # opened without O_NONBLOCK this call would never return
    runner._observe_start(services, job, tmp_path, runner.EventSink(services, "j4", []))
    assert _counts(services)['smcp_job_start_seconds_count{until="playbook_spawned"}'] == "0"
