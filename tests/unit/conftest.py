"""Make the collection importable as ``ansible_collections.smcp.platform`` for unit tests.

`make setup` links the repository at .venv/collections/ansible_collections/smcp/platform;
put that collections root on sys.path when the import does not already work.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_COLLECTIONS = Path(__file__).resolve().parents[2] / ".venv" / "collections"

try:
    _FOUND = importlib.util.find_spec("ansible_collections.smcp.platform") is not None
except ModuleNotFoundError:
    _FOUND = False
if not _FOUND and _COLLECTIONS.is_dir():
    sys.path.insert(0, str(_COLLECTIONS))
