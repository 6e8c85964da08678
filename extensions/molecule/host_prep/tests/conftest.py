"""Shared helpers for the host_prep scenario's verify tests."""

from __future__ import annotations

import pytest
import testinfra


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> str:
    """The molecule inventory the verifier was started with."""
    return str(request.config.option.ansible_inventory)


@pytest.fixture(scope="session")
def get_host(inventory: str):
    """Return a testinfra host for an inventory name (for checks that involve two hosts)."""

    def _get(name: str):
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)

    return _get
