"""smcpctl connection settings: flags > SMCP_URL / SMCP_TOKEN / SMCP_PROJECT > ~/.config/smcp/config.yaml (0600) >
default."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from smcp_api.client import DEFAULT_URL
from smcp_api.fsmodes import private_dir


class ConfigError(Exception):
    """The config file cannot be read or written (smcpctl exit code 2)."""


def config_path() -> Path:
    """SMCP_CONFIG, else $XDG_CONFIG_HOME/smcp/config.yaml, else ~/.config/smcp/config.yaml."""
    env = os.environ.get("SMCP_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "smcp" / "config.yaml"


def load_file(path: Path) -> dict[str, Any]:
    """The config file's mapping ({} when absent). Warns when others can read it (it holds a token)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        sys.stderr.write(f"smcpctl: warning: {path} has mode {mode:04o}; it holds a token: chmod 600 {path}\n")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}; fix or remove it") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping with `url` and `token` keys, found {type(data).__name__}")
    return data


def save_file(path: Path, updates: dict[str, Any]) -> None:
    """Merge `updates` into the config file, written atomically with mode 0600 (directory 0700)."""
    data = load_file(path)
    data.update(updates)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write("# smcpctl settings (holds an API token: keep mode 0600)\n")
            yaml.safe_dump(data, fh, sort_keys=True, default_flow_style=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Settings:
    url: str
    token: str | None
    path: Path
    url_source: str
    auth_source: str
    project: str | None = None  # sent as X-SMCP-Project; None: the API picks (the token's, the user's only one)


def resolve(
    url: str | None = None, token: str | None = None, path: Path | None = None, project: str | None = None
) -> Settings:
    """Pick url, token and project by precedence: explicit value, environment, config file, default."""
    path = path or config_path()
    data: dict[str, Any] | None = None

    def file_value(key: str) -> str | None:
        nonlocal data
        if data is None:
            data = load_file(path)
        value = data.get(key)
        return str(value) if value else None

    url_source = auth_source = "flag"
    if not url:
        url, url_source = os.environ.get("SMCP_URL"), "env SMCP_URL"
    if not url:
        url, url_source = file_value("url"), str(path)
    if not url:
        url, url_source = DEFAULT_URL, "default"
    if not token:
        token, auth_source = os.environ.get("SMCP_TOKEN"), "env SMCP_TOKEN"
    if not token:
        token, auth_source = file_value("token"), str(path)
    if not token:
        auth_source = "none"
    project = project or os.environ.get("SMCP_PROJECT") or file_value("project")
    return Settings(
        url=url.rstrip("/"), token=token, path=path, url_source=url_source, auth_source=auth_source, project=project
    )
