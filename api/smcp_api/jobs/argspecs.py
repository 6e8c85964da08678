"""Role option checking against the collection's own meta/argument_specs.yml files.

The names a user may set are decided by smcp_api.varpolicy; this module reads the roles' option specs
and checks the values: types, choices, list elements and nested options, with Ansible's own
ArgumentSpecValidator (the code `validate_argument_spec` runs in the roles), so the API and the roles
agree. Unlike the roles, the API does not convert: `'60'` for an int or `'yes'` for a bool is refused
(JSON and YAML bodies carry real types), so what is stored is what the roles receive.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from smcp_api.collection import CollectionNotFound

# Spec keys of a top-level option that do not apply to a partial set of values.
_DROP = ("required", "default")


class SpecError(CollectionNotFound):
    """A role's meta/argument_specs.yml cannot be read: its options can be neither allowed nor checked (503)."""


@lru_cache(maxsize=8)
def _load(roles_dir: str, stamp: float) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    entries: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for spec_file in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        try:
            doc = yaml.safe_load(spec_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            entries[(role, "!error")] = {"!error": {"error": f"{spec_file}: {exc}".replace("\n", " ")}}
            continue
        for entry_point, entry in (doc.get("argument_specs") or {}).items():
            entries[(role, str(entry_point))] = dict((entry or {}).get("options") or {})
    return entries


def entry_points(collection_dir: Path) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """{(role, entry point): {option: spec}} of every role of the collection."""
    roles = collection_dir / "roles"
    stamp = max((p.stat().st_mtime for p in roles.glob("*/meta/argument_specs.yml")), default=0.0)
    return _load(str(roles), stamp)


def role_options(collection_dir: Path, include: Iterable[tuple[str, str]] | None = None) -> dict[str, dict[str, Any]]:
    """Options of the given (role, entry point) pairs (all when None), by name; the first definition wins."""
    everything = entry_points(collection_dir)
    roles = None if include is None else {role for role, _ in include}
    broken = [e["!error"]["error"] for (r, ep), e in everything.items() if ep == "!error" and (not roles or r in roles)]
    if broken:
        raise SpecError(f"cannot read the roles' argument specs ({'; '.join(broken)}); fix or reinstall the collection")
    keys = sorted(everything) if include is None else [k for k in include if k in everything]
    options: dict[str, dict[str, Any]] = {}
    for key in keys:
        for name, spec in everything[key].items():
            options.setdefault(name, spec or {})
    return options


def _kind(spec: dict[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    if kind == "list" and spec.get("elements"):
        return f"list of {spec['elements']}"
    return kind


def _same(given: Any, checked: Any) -> bool:
    """True when Ansible kept `given` as it is (defaults it added to nested dicts do not count)."""
    if isinstance(given, dict):
        return isinstance(checked, dict) and all(k in checked and _same(v, checked[k]) for k, v in given.items())
    if isinstance(given, list):
        return isinstance(checked, list) and len(given) == len(checked) and all(map(_same, given, checked))
    if isinstance(given, str):
        return isinstance(checked, str)  # type path expands ~ and $VARS, as the role itself would
    if isinstance(given, bool) or isinstance(checked, bool):
        return type(given) is type(checked) and given == checked
    if isinstance(given, int) and isinstance(checked, float):
        return given == checked
    return type(given) is type(checked) and given == checked


def check_values(field: str, values: dict[str, Any], options: dict[str, dict[str, Any]]) -> list[str]:
    """Problems with the values of known options (empty when fine); names not in `options` are skipped."""
    problems: list[str] = []
    for name, value in values.items():
        spec = options.get(name)
        if spec is None:
            continue
        kind = _kind(spec)
        top = {k: v for k, v in copy.deepcopy(spec).items() if k not in _DROP}
        if spec.get("type", "str") in ("int", "float") and isinstance(value, bool):
            problems.append(f"{field}.{name}: {value!r} is not a {kind}; give a {kind} value")
            continue
        result = ArgumentSpecValidator({name: top}).validate({name: copy.deepcopy(value)})
        if result.error_messages:
            choices = spec.get("choices")
            if choices and not isinstance(value, list | dict):
                problems.append(f"{field}.{name}: {value!r} is not one of {choices}; use one of them")
            else:
                why = "; ".join(str(m) for m in result.error_messages)
                problems.append(f"{field}.{name}: {value!r} does not fit the option ({why}); give a {kind} value")
            continue
        if not _same(value, result.validated_parameters.get(name)):
            problems.append(f"{field}.{name}: {value!r} is not a {kind}; give a {kind} value")
    return problems
