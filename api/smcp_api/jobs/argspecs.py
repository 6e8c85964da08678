"""Role option checking against the collection's own meta/argument_specs.yml files.

Job extra_vars and cluster options are validated here, so the API and the roles agree on names, types
and choices, and a bad value is refused before any job is recorded.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "bool": (bool,),
    "int": (int,),
    "float": (float, int),
    "list": (list,),
    "dict": (dict,),
    "path": (str,),
}


@lru_cache(maxsize=8)
def _load(roles_dir: str, stamp: float) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        try:
            doc = yaml.safe_load(spec_file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for entry in (doc.get("argument_specs") or {}).values():
            for name, spec in ((entry or {}).get("options") or {}).items():
                options.setdefault(name, spec or {})
    return options


def role_options(collection_dir: Path) -> dict[str, dict[str, Any]]:
    """Every option of every role entry point, by name (first definition wins)."""
    roles = collection_dir / "roles"
    stamp = max((p.stat().st_mtime for p in roles.glob("*/meta/argument_specs.yml")), default=0.0)
    return _load(str(roles), stamp)


def check_vars(field: str, values: dict[str, Any], collection_dir: Path) -> list[str]:
    """Problems with `values` (empty when fine): unknown names, wrong types, values outside choices."""
    options = role_options(collection_dir)
    problems: list[str] = []
    for name, value in values.items():
        if name.startswith("ansible_"):
            problems.append(f"{field}.{name}: connection variables are set by the API; remove '{name}'")
            continue
        spec = options.get(name)
        if spec is None:
            near = sorted(o for o in options if o.split("_")[0] == name.split("_")[0])[:8]
            hint = f" (options of that role: {', '.join(near)})" if near else ""
            problems.append(f"{field}.{name}: not an option of any smcp.platform role; remove it or fix the name{hint}")
            continue
        kind = spec.get("type", "str")
        allowed = _TYPES.get(kind)
        if allowed and (not isinstance(value, allowed) or (kind in ("int", "float") and isinstance(value, bool))):
            problems.append(f"{field}.{name}: {value!r} is not a {kind}; give a {kind} value")
            continue
        choices = spec.get("choices")
        if choices and value not in choices:
            problems.append(f"{field}.{name}: {value!r} is not one of {choices}; use one of them")
    return problems
