"""Molecule's SSH ControlPath must fit a unix socket path wherever the checkout lives.

ssh appends ".XXXXXXXXXXXXXXXX" (17 bytes) to the ControlPath while it sets up a master, and a
unix socket path holds at most 107 bytes. A path under the ephemeral dir grows with the checkout
path (CI's /check/work/main/.ansible/tmp/molecule.XXXX.<scenario>/ broke it once)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MOLECULE = ROOT / "extensions" / "molecule"
# Scenarios on sandbox hosts. One marked .not-in-ci (e2e) runs on the user's machines with
# the user's own SSH settings, so its ControlPath is theirs.
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml") if not (p.parent / ".not-in-ci").exists())
SUN_PATH_MAX = 107
SSH_TEMP_SUFFIX = 17
PERCENT_C = 40  # %C: hex SHA1 of the connection tuple


def _control_path(scenario: str) -> str:
    opts = yaml.safe_load((MOLECULE / "config.yml").read_text())["driver"]["ssh_connection_options"]
    own = yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text()) or {}
    opts = (own.get("driver") or {}).get("ssh_connection_options", opts)
    paths = [o.split("ControlPath=", 1)[1] for o in opts if "ControlPath=" in o]
    assert len(paths) == 1, f"{scenario}: exactly one ControlPath expected, got {paths}"
    return paths[0]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_control_path_is_short_and_independent_of_checkout(scenario: str) -> None:
    path = _control_path(scenario)
    assert "MOLECULE_EPHEMERAL_DIRECTORY" not in path and "MOLECULE_PROJECT_DIRECTORY" not in path
    rendered = path.replace("${MOLECULE_SCENARIO_NAME}", scenario).replace("%C", "x" * PERCENT_C)
    assert "$" not in rendered and "%" not in rendered, rendered
    assert len(rendered) + SSH_TEMP_SUFFIX <= SUN_PATH_MAX, f"{scenario}: {rendered} is too long for a socket"


def test_destroy_removes_the_sockets_the_config_creates() -> None:
    destroy = (MOLECULE / "destroy.yml").read_text()
    assert "smcp-mol-{{ molecule_yml.scenario.name }}-*" in destroy
    assert _control_path("smoke").startswith("/tmp/smcp-mol-${MOLECULE_SCENARIO_NAME}-")


def test_sandbox_scenarios_found() -> None:
    assert {"smoke", "host_prep", "etcd"} <= set(SCENARIOS)
