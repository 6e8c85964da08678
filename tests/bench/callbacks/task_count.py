"""Callback: count the tasks started per play and host (for the issue 13 task budget).

A task "starts" on a host when the strategy queues it for that host (``v2_runner_on_start``),
whether it then runs, is skipped by its ``when`` or fails; handlers count too, loops count once.
Enable with ``ANSIBLE_CALLBACKS_ENABLED=task_count ANSIBLE_CALLBACK_PLUGINS=tests/bench/callbacks``;
the counts are appended as one JSON line per playbook run to ``$SMCP_TASK_COUNT_FILE``
(default ``task_count.jsonl`` in the current directory):
``{"playbook": ..., "plays": [{"play": NAME, "started": {HOST: N}, "skipped": {HOST: N}, "tasks": {HOST: [NAME]}}]}``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_count
type: aggregate
short_description: count the tasks started per play and host
description: Writes one JSON line per playbook run to $SMCP_TASK_COUNT_FILE.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_count"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._playbook = ""
        self._plays: list[dict[str, Any]] = []

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._playbook = os.path.basename(getattr(playbook, "_file_name", "") or "")

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._plays.append({"play": play.get_name(), "started": Counter(), "skipped": Counter(), "tasks": {}})

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        if self._plays:
            self._plays[-1]["started"][host.get_name()] += 1
            self._plays[-1]["tasks"].setdefault(host.get_name(), []).append(task.get_name())

    def v2_runner_on_skipped(self, result: Any) -> None:
        if self._plays:
            self._plays[-1]["skipped"][result._host.get_name()] += 1

    def v2_playbook_on_stats(self, stats: Any) -> None:
        path = os.environ.get("SMCP_TASK_COUNT_FILE", "task_count.jsonl")
        plays = [{**p, "started": dict(p["started"]), "skipped": dict(p["skipped"])} for p in self._plays]
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"playbook": self._playbook, "plays": plays}) + "\n")
