"""AWX: the job templates and surveys of playbooks/awx_config.yml, and the execution environment definition."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "awx_config.yml"
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
OPERATIONS = {"cluster", "scale", "upgrade", "prepare_hosts", "etcd_backup", "remove_node"}
_REF = re.compile(r"^\{\{ *([A-Za-z_][A-Za-z0-9_]*) *\}\}$")


def _resolve(value, variables):
    """Resolve the playbook's plain `{{ name }}` references (all it uses inside the template data)."""
    if isinstance(value, str):
        match = _REF.match(value)
        return _resolve(variables[match.group(1)], variables) if match else value
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def templates():
    play = yaml.safe_load(PLAYBOOK.read_text())[0]
    variables = play["vars"]
    return _resolve(variables["awx_job_templates"], variables)


def _argument_spec_options() -> set[str]:
    names: set[str] = set()
    for spec in ROOT.glob("roles/*/meta/argument_specs.yml"):
        for entry in (yaml.safe_load(spec.read_text()) or {}).get("argument_specs", {}).values():
            names.update((entry or {}).get("options") or {})
    return names


def test_every_main_operation_has_a_job_template(templates):
    names = [t["name"] for t in templates]
    assert len(set(names)) == len(names)
    playbooks = {Path(t["playbook"]).stem for t in templates}
    assert playbooks >= OPERATIONS
    for template in templates:
        assert (ROOT / template["playbook"]).is_file(), template["playbook"]
        assert template["description"]


def test_surveys_are_well_formed(templates):
    role_vars = _argument_spec_options()
    for template in templates:
        seen = set()
        for question in template["survey"]:
            where = f"{template['name']}: {question.get('variable')}"
            assert set(question) >= {"question_name", "variable", "type", "required"}, where
            assert question["type"] in SURVEY_TYPES, where
            assert re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", question["variable"]), where
            assert question["variable"] not in seen, where
            seen.add(question["variable"])
            if question["type"] in ("multiplechoice", "multiselect"):
                assert question["choices"] and all(isinstance(c, str) for c in question["choices"]), where
                if "default" in question:
                    assert question["default"] in question["choices"], where
            if question["type"] == "integer":
                assert question["min"] <= question.get("default", question["min"]) <= question["max"], where
            if question["type"] == "text" and "default" in question:
                assert question["min"] <= len(str(question["default"])) <= question["max"], where
            # Answers become extra vars: each must be a variable some role reads (or the confirmation gate).
            assert question["variable"] in role_vars or question["variable"] == "smcp_awx_confirm", where


def test_mutating_operations_need_confirmation_and_node_selection(templates):
    by_playbook = {Path(t["playbook"]).stem: t for t in templates}
    for name in ("upgrade", "remove_node"):
        confirm = [q for q in by_playbook[name]["survey"] if q["variable"] == "smcp_awx_confirm"]
        assert confirm and confirm[0]["required"] and confirm[0]["choices"] == ["yes"], name
    for name in ("scale", "remove_node"):
        assert by_playbook[name]["ask_limit_on_launch"] is True, f"{name} selects its nodes with the Limit prompt"
    batch = next(q for q in by_playbook["upgrade"]["survey"] if q["variable"] == "upgrade_batch_size")
    assert batch["type"] == "integer" and batch["min"] >= 1


def test_default_version_is_a_supported_one(templates):
    from ansible_collections.smcp.platform.plugins.module_utils import versions

    question = next(q for t in templates for q in t["survey"] if q["variable"] == "smcp_kubernetes_version")
    assert question["default"] in versions.supported_versions()


def test_awx_config_syntax_check():
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
    )
    run = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "--syntax-check", str(PLAYBOOK)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def test_execution_environment_definition():
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    pins = _constraints()
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={pins['ansible-core']}"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={pins['ansible-runner']}"
    requirements = (ROOT / deps["python"]).read_text().splitlines()
    required = [line for line in requirements if line and not line.startswith("#")]
    assert {r.split("==")[0].lower() for r in required} >= {"kubernetes", "jmespath", "netaddr", "cryptography"}
    for line in required:
        name, version = line.split("==")
        assert pins[name.lower()] == version, f"{name} pinned like requirements/constraints.txt"
    bindep = (ROOT / deps["system"]).read_text()
    assert "openssh-client" in bindep and "rsync" in bindep
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    collections = {c["name"]: c for c in deps["galaxy"]["collections"]}
    for dependency in galaxy["dependencies"]:
        assert dependency in collections, f"{dependency} (galaxy.yml) is in the EE"
    tarball = f"smcp-platform-{galaxy['version']}.tar.gz"
    assert any(name.endswith("/" + tarball) for name in collections), "the EE installs this collection's tarball"
    assert ee["additional_build_files"][0]["src"] == f"dist/{tarball}"


def test_collection_ee_metadata_points_at_real_files():
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    for key in ("python", "system"):
        assert (ROOT / meta["dependencies"][key]).is_file()
