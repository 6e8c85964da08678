"""The collection builds into a tarball that installs and works (issue 2, item 1)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smcp-api wheel, built (as pip would, isolated) from a copy of what setuptools reads."""
    src = tmp_path_factory.mktemp("wheel-src")
    shutil.copytree(ROOT / "api", src / "api", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    res = _run(str(ROOT / ".venv" / "bin" / "python"), "-m", "build", "--wheel", "--outdir", str(out), str(src))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wheels = list(out.glob("smcp_api-*.whl"))
    assert len(wheels) == 1, res.stdout[-3000:]
    return wheels[0]


# What a test, a stand-in or a fixture looks like, wherever it is put.
_TEST_DIRS = {"tests", "test", "standins", "fixtures", "golden", "molecule", "testdata"}
_TEST_NAME = re.compile(r"^(test_.*\.py|.*_test\.py|conftest\.py|.*standin.*)$", re.IGNORECASE)


def leaked_tests(names: list[str], allowed_test_dirs: tuple[str, ...] = ()) -> list[str]:
    """The entries of a built archive that are tests, stand-ins or fixtures."""
    found = []
    for name in names:
        path = PurePosixPath(name)
        if any(name == d.rstrip("/") or name.startswith(d) for d in allowed_test_dirs):
            continue
        if _TEST_DIRS & {part.lower() for part in path.parts[:-1]} or _TEST_NAME.match(path.name):
            found.append(name)
        elif path.parts and path.parts[0] == "tests" and len(path.parts) > 1:
            found.append(name)  # anything else under tests/ but the allowed dirs
    return found


def test_leaked_tests_recognises_tests_standins_and_fixtures() -> None:
    names = [
        "roles/etcd/tasks/main.yml",
        "docs/testing.md",
        "tests/sanity/ignore-2.19.txt",
        "tests/integration/files/upgrade_host_standin.yml",
        "tests/unit/golden/flannel.yml",
        "tests/conftest.py",
        "extensions/molecule/smoke/converge.yml",
        "smcp_api/standins/kubelet",
        "smcp_api/sandbox/test_image.py",
        "roles/x/files/fixtures/data.json",
    ]
    assert leaked_tests(names, allowed_test_dirs=("tests/sanity/",)) == names[3:]


def test_galaxy_metadata_is_complete() -> None:
    meta = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert (meta["namespace"], meta["name"]) == ("smcp", "platform")
    # Semantic versioning as Galaxy requires it: MAJOR.MINOR.PATCH, numbers without leading zeros.
    assert re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", str(meta["version"])), meta["version"]
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
    assert not leaked, f"non-collection content in the tarball: {leaked[:10]}"
    # Only the sanity ignore files Galaxy's importer reads may ship from tests/.
    leaked = leaked_tests(names, allowed_test_dirs=("tests/sanity/",))
    assert not leaked, f"tests, stand-ins or fixtures in the collection tarball: {leaked[:10]}"


def test_wheel_holds_no_tests_standins_or_fixtures(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    assert "smcp_api/main.py" in names and "smcp_api/sandbox/aptcache.py" in names, names[:20]
    leaked = leaked_tests(names)
    assert not leaked, f"tests, stand-ins or fixtures in the wheel: {leaked[:10]}"


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
