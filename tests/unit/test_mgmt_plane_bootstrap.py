"""`smcp-api bootstrap`, run by the mgmt_plane role before the service's first start: creates the first admin
token and a valid Prometheus scrape token, each once, 0600, and never prints a secret. The API's own start-up
creates its admin token with the same function (smcp_api.bootstrap.ensure_admin_token)."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from smcp_api import bootstrap as bootstrap_module
from smcp_api import server
from smcp_api.core.config import Settings
from smcp_api.db import make_engine, make_sessionmaker
from smcp_api.models import Token
from smcp_api.security import hash_token
from sqlalchemy import select

ROLE = Path(__file__).resolve().parents[2] / "roles" / "mgmt_plane"


@pytest.fixture
def helper() -> ModuleType:
    return bootstrap_module


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "api", admin_token_file=tmp_path / "api" / "admin.token")


def tokens(settings: Settings) -> dict[str, tuple[str, str]]:
    engine = make_engine(settings.database_url())
    try:
        with make_sessionmaker(engine)() as session:
            return {t.name: (t.role, t.token_hash) for t in session.scalars(select(Token))}
    finally:
        engine.dispose()


def test_first_run_creates_both_tokens_private(helper: ModuleType, settings: Settings, tmp_path: Path) -> None:
    scrape = tmp_path / "api" / "prometheus.token"
    assert helper.bootstrap(settings, scrape, "prometheus-m1") == {"admin_token": True, "scrape_token": True}
    admin = settings.token_file()
    for path in (admin, scrape):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = tokens(settings)
    assert stored["bootstrap-admin"] == ("admin", hash_token(admin.read_text().strip()))
    assert stored["prometheus-m1"] == ("viewer", hash_token(scrape.read_text().strip()))


def test_rerun_changes_nothing(helper: ModuleType, settings: Settings, tmp_path: Path) -> None:
    scrape = tmp_path / "api" / "prometheus.token"
    helper.bootstrap(settings, scrape, "prometheus-m1")
    before = (tokens(settings), settings.token_file().read_text(), scrape.read_text())
    assert helper.bootstrap(settings, scrape, "prometheus-m1") == {"admin_token": False, "scrape_token": False}
    assert (tokens(settings), settings.token_file().read_text(), scrape.read_text()) == before


@pytest.mark.parametrize("damage", ["missing", "unknown"])
def test_a_lost_or_foreign_scrape_token_is_replaced(
    helper: ModuleType, settings: Settings, tmp_path: Path, damage: str
) -> None:
    scrape = tmp_path / "api" / "prometheus.token"
    helper.bootstrap(settings, scrape, "prometheus-m1")
    old = tokens(settings)["prometheus-m1"]
    if damage == "missing":
        scrape.unlink()
    else:
        scrape.write_text("smcp_not-a-token\n")
    assert helper.bootstrap(settings, scrape, "prometheus-m1") == {"admin_token": False, "scrape_token": True}
    stored = tokens(settings)
    assert stored["prometheus-m1"] != old
    assert stored["prometheus-m1"] == ("viewer", hash_token(scrape.read_text().strip()))
    assert len(stored) == 2


def test_an_existing_admin_is_kept(helper: ModuleType, settings: Settings, tmp_path: Path) -> None:
    """A database that already has tokens (e.g. restored) gets no second admin."""
    helper.bootstrap(settings, tmp_path / "api" / "prometheus.token", "prometheus-m1")
    settings.token_file().unlink()
    result = helper.bootstrap(settings, tmp_path / "api" / "prometheus.token", "prometheus-m1")
    assert result["admin_token"] is False
    assert not settings.token_file().exists()


def test_output_carries_no_secret(
    helper: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMCP_DATA_DIR", str(tmp_path / "api"))
    monkeypatch.delenv("SMCP_DB_URL", raising=False)
    scrape = tmp_path / "api" / "prometheus.token"
    server.main(["bootstrap", "--scrape-token-file", str(scrape), "--scrape-token-name", "prometheus-m1"])
    out, err = capsys.readouterr()
    assert json.loads(out) == {"admin_token": True, "scrape_token": True}
    secrets = [(tmp_path / "api" / "admin.token").read_text().strip(), scrape.read_text().strip()]
    assert not any(secret in out + err for secret in secrets)
    with pytest.raises(SystemExit) as usage:
        server.main(["bootstrap"])
    assert usage.value.code == 2
    assert "--scrape-token-file" in capsys.readouterr().err


def test_the_role_runs_the_command_as_the_parser_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mgmt_plane task calls `<venv>/bin/smcp-api bootstrap ...` with arguments the command accepts."""
    tasks = yaml.safe_load((ROLE / "tasks" / "api.yml").read_text(encoding="utf-8"))
    (task,) = [t for t in tasks if "create the admin and Prometheus tokens" in t.get("name", "")]
    argv = task["ansible.builtin.command"]["argv"]
    command = argv[argv.index("--") + 1 :]
    assert command[0] == "{{ _mgmt_plane_venv }}/bin/smcp-api"
    seen: list[tuple[str, Path, str]] = []
    monkeypatch.setattr(
        bootstrap_module, "bootstrap", lambda settings, path, name: seen.append(("called", path, name)) or {}
    )
    server.main(command[1:])
    assert seen == [("called", Path("{{ _mgmt_plane_scrape_token_file }}"), "prometheus-{{ inventory_hostname }}")]
    assert not (ROLE / "files" / "smcp-mgmt-bootstrap.py").exists()


def test_the_service_start_creates_its_admin_token_the_same_way(settings: Settings) -> None:
    """main._bootstrap_admin prints the token the shared function created (and only on an empty table)."""
    from smcp_api.main import _bootstrap_admin
    from smcp_api.services import build_services

    services = build_services(settings)
    try:
        first = _bootstrap_admin(services)
        assert first is not None and settings.token_file().read_text().strip() == first
        assert tokens(settings) == {"bootstrap-admin": ("admin", hash_token(first))}
        assert _bootstrap_admin(services) is None
    finally:
        services.engine.dispose()
