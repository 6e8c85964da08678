"""The mgmt_plane role's bootstrap helper: creates the first admin token and a valid Prometheus scrape
token, each once, 0600, and never prints a secret."""

from __future__ import annotations

import importlib.util
import json
import stat
from pathlib import Path
from types import ModuleType

import pytest
from smcp_api.core.config import Settings
from smcp_api.db import make_engine, make_sessionmaker
from smcp_api.models import Token
from smcp_api.security import hash_token
from sqlalchemy import select

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "mgmt_plane" / "files" / "smcp-mgmt-bootstrap.py"


@pytest.fixture
def helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("smcp_mgmt_bootstrap", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    assert helper.main(["smcp-mgmt-bootstrap.py", str(scrape), "prometheus-m1"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"admin_token": True, "scrape_token": True}
    secrets = [(tmp_path / "api" / "admin.token").read_text().strip(), scrape.read_text().strip()]
    assert not any(secret in out + err for secret in secrets)
    assert helper.main(["smcp-mgmt-bootstrap.py"]) == 2
