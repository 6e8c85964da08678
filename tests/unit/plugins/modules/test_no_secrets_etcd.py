"""Every etcd task that carries key material or a cluster token has no_log: true.

The molecule scenario `etcd` checks real -vvv output of a restore and a scale-up for key
material and the token; this static check also covers paths it does not run (first bootstrap,
a user-supplied CA, the API server's client certificate).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[4]
TASK_FILES = sorted((ROOT / "roles" / "etcd" / "tasks").glob("*.yml"))
# Variables whose value is secret: issued keys (the whole bundle), the user's CA key, tokens
# (only testing whether the CA key is set, "etcd_ca_key | length", is not a use of it).
SECRET = re.compile(
    r"_etcd_pki\.content|etcd_ca_key(?!\s*\|\s*length)|_etcd_token\b|_etcd_restore_token|etcd_restore_cluster_token"
)
# Tasks that only *register* secrets (a module result) also need no_log.
SECRET_MODULES = {"smcp.platform.etcd_certs"}


def _tasks(node: object):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if any(k in node for k in ("block", "rescue", "always")):
            for key in ("block", "rescue", "always"):
                yield from _tasks(node.get(key) or [])
        else:
            yield node


EXPRESSION_KEYS = {"that", "when", "failed_when", "changed_when", "until"}
JINJA = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.S)


def _expressions(node: object, key: str = "") -> list[str]:
    """Jinja expressions of a task: bare conditionals and the {{ }} / {% %} parts of strings."""
    if isinstance(node, dict):
        return [e for k, v in node.items() if k not in ("name", "no_log") for e in _expressions(v, str(k))]
    if isinstance(node, list):
        return [e for v in node for e in _expressions(v, key)]
    if isinstance(node, str):
        return [node] if key in EXPRESSION_KEYS else ["".join(m) for m in JINJA.findall(node)]
    return []


def _secret_tasks() -> list[tuple[str, dict]]:
    found = []
    for path in TASK_FILES:
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            text = "\n".join(_expressions(task))
            if SECRET.search(text) or SECRET_MODULES & set(task):
                found.append((f"{path.name}: {task.get('name')}", task))
    return found


def test_the_check_sees_the_secret_tasks():
    names = [name for name, _task in _secret_tasks()]
    assert any("Issue the CA" in n for n in names)
    assert any("bootstrap settings (every member" in n for n in names)
    assert any("restore the snapshot with a new token" in n for n in names)
    assert any("control-plane hosts" in n for n in names)


@pytest.mark.parametrize(("name", "task"), _secret_tasks(), ids=[n for n, _t in _secret_tasks()])
def test_secret_tasks_have_no_log(name: str, task: dict):
    assert task.get("no_log") is True, f"{name} handles key material or a token: add no_log: true"


def test_the_modules_mark_key_parameters_no_log():
    sys_path = str(ROOT / ".venv" / "collections")
    import sys

    sys.path.insert(0, sys_path)
    from ansible_collections.smcp.platform.plugins.modules import etcd_certs

    assert etcd_certs.ARGUMENT_SPEC["ca_key"]["no_log"] is True
    assert etcd_certs.ARGUMENT_SPEC["files"]["no_log"] is True
