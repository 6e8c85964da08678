"""The API's layers, read from its source (no import, nothing started).

- no import loop between smcp_api modules, counting every import (module level, under TYPE_CHECKING, inside
  functions): a loop hidden behind TYPE_CHECKING or a late import still ties the modules together;
- no route module imports another route module (shared route helpers live in smcp_api.api.writes/deps);
- below the HTTP layer (services, jobs, store, bootstrap) nothing imports FastAPI or Starlette: services raise
  smcp_api.errors, and main.py alone turns them into HTTP statuses.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "api" / "smcp_api"
HTTP_LAYER = ("smcp_api.main", "smcp_api.bodies", "smcp_api.api.", "smcp_api.server")
NOT_HTTP = (
    "smcp_api.errors",
    "smcp_api.jobstates",
    "smcp_api.services",
    "smcp_api.bootstrap",
    "smcp_api.hostkey_service",
    "smcp_api.jobs.",
    "smcp_api.models",
    "smcp_api.db",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Every module an import statement anywhere in the file names (absolute names).

    `from pkg import sub` names the module `pkg.sub` when there is one (not `pkg`: a package's __init__ that
    re-exports its submodules is no loop), else `pkg`.
    """
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: (imports(path, modules.keys()) & modules.keys()) - {name} for name, path in modules.items()}


def test_the_graph_is_read() -> None:
    g = graph()
    assert "smcp_api.jobs.worker" in g["smcp_api.main"]
    assert "smcp_api.jobs.runner" in g["smcp_api.jobs.worker"]
    assert "smcp_api.services" in g["smcp_api.jobs.runner"]  # under TYPE_CHECKING: counted too


def test_no_import_loop() -> None:
    try:
        TopologicalSorter(graph()).prepare()
    except CycleError as exc:
        pytest.fail(f"import loop: {' -> '.join(exc.args[1])}; move the shared piece to a module both can import")


def test_no_route_module_imports_another() -> None:
    g = graph()
    routes = {name for name in g if name.startswith("smcp_api.api.routes.")}
    crossing = {name: sorted(g[name] & routes) for name in routes if g[name] & routes}
    assert not crossing, f"route modules importing route modules: {crossing}; share through smcp_api.api.writes"


@pytest.mark.parametrize("prefix", NOT_HTTP)
def test_below_the_http_layer_nothing_speaks_http(prefix: str) -> None:
    paths = [
        p
        for p in ROOT.rglob("*.py")
        if (module_name(p) + ".").startswith(prefix if prefix.endswith(".") else prefix + ".")
    ]
    assert paths, prefix
    for path in paths:
        name = module_name(path)
        assert not name.startswith(HTTP_LAYER), name
        web = sorted(m for m in imports(path) if m.split(".")[0] in ("fastapi", "starlette"))
        layers = sorted(m for m in imports(path) if m.startswith(HTTP_LAYER))
        assert not web and not layers, f"{name} imports {web + layers}; raise smcp_api.errors instead"
