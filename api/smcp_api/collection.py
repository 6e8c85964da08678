"""Import the smcp.platform collection's pure Python (plugins/module_utils) into the API process.

The versions table and the upgrade planner live in the collection so that roles, modules and the API
share one copy. The collection is found, in order, at $SMCP_COLLECTIONS_PATH, the working tree's
.venv/collections, ~/.ansible/collections and /usr/share/ansible/collections; the first one holding
ansible_collections/smcp/platform/plugins/module_utils is put on sys.path.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from smcp_api import paths
from smcp_api.errors import Unavailable

PACKAGE = "ansible_collections.smcp.platform.plugins.module_utils"
_PARTS = ("ansible_collections", "smcp", "platform", "plugins", "module_utils")


class CollectionNotFound(Unavailable, RuntimeError):
    """The smcp.platform collection (with its plugins) is nowhere the API looks."""


def candidates() -> list[Path]:
    """Collections roots to try, most specific first."""
    out: list[Path] = []
    env = os.environ.get("SMCP_COLLECTIONS_PATH")
    if env:
        out.extend(Path(p) for p in env.split(os.pathsep) if p)
    try:
        out.append(paths.repo_root() / ".venv" / "collections")
    except RuntimeError:
        pass
    out += [Path.home() / ".ansible" / "collections", Path("/usr/share/ansible/collections")]
    return out


@lru_cache(maxsize=1)
def collections_root() -> Path:
    """The first candidate holding smcp.platform's module_utils, put on sys.path."""
    for root in candidates():
        if root.joinpath(*_PARTS).is_dir():
            if str(root) not in sys.path:
                sys.path.append(str(root))
            importlib.invalidate_caches()
            return root
    tried = ", ".join(str(p) for p in candidates())
    raise CollectionNotFound(
        f"the smcp.platform collection is not installed where the API looks ({tried}); "
        "install it (ansible-galaxy collection install) or set SMCP_COLLECTIONS_PATH"
    )


def module_utils(name: str) -> ModuleType:
    """ansible_collections.smcp.platform.plugins.module_utils.<name>."""
    collections_root()
    return importlib.import_module(f"{PACKAGE}.{name}")
