"""The collection builds into a tarball that installs and works (issue 2, item 1)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    res = _run("ansible-galaxy", "collection", "build", "--force", "--output-path", str(out), str(ROOT))
    assert res.returncode == 0, res.stderr
    tarballs = list(out.glob("smcp-platform-*.tar.gz"))
    assert len(tarballs) == 1, res.stdout
    return tarballs[0]


def test_galaxy_metadata_is_complete() -> None:
    meta = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert (meta["namespace"], meta["name"]) == ("smcp", "platform")
    major, minor, patch = (int(p) for p in meta["version"].split("."))
    assert major >= 0 and minor >= 0 and patch >= 0
    for key in ("license", "description", "tags", "repository", "documentation", "issues", "build_ignore"):
        assert meta.get(key), f"galaxy.yml lacks {key}"
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=2.19")


def test_tarball_holds_collection_content_only(built: Path) -> None:
    with tarfile.open(built) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names and "FILES.json" in names
    assert any(n.startswith("roles/") for n in names)
    assert any(n.startswith("playbooks/") for n in names)
    leaked = [n for n in names if n.split("/")[0] in {"api", ".venv", ".ci", ".git", "scripts", "requirements"}]
    leaked += [n for n in names if n.startswith("tests/bench")]
    assert not leaked, f"non-collection content in the tarball: {leaked[:10]}"


def test_tarball_installs_and_its_playbooks_load(built: Path, tmp_path: Path) -> None:
    dest = tmp_path / "collections"
    # A clean environment: the working tree's own collection link must not satisfy the install.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(dest)
    env["ANSIBLE_HOME"] = str(tmp_path / "ansible-home")
    res = _run("ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", str(dest), str(built), env=env)
    assert res.returncode == 0, res.stderr
    installed = dest / "ansible_collections" / "smcp" / "platform"
    assert (installed / "MANIFEST.json").is_file(), res.stdout
    playbooks = sorted(p.stem for p in (installed / "playbooks").glob("*.yml"))
    assert playbooks, "the installed collection has no playbooks"
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    node-1:\n      ansible_connection: local\n")
    for name in playbooks:
        res = _run(
            "ansible-playbook", "-i", str(inventory), "--syntax-check", f"smcp.platform.{name}", env=env, cwd=tmp_path
        )
        assert res.returncode == 0, f"smcp.platform.{name}: {res.stdout}\n{res.stderr}"
    # The installed module documentation renders (DOCUMENTATION/EXAMPLES/RETURN are valid YAML).
    res = _run("ansible-doc", "-t", "module", "smcp.platform.node_preflight", env=env, cwd=tmp_path)
    assert res.returncode == 0 and "node_preflight" in res.stdout, res.stderr
