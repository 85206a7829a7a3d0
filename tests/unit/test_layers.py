"""One-way layers, checked from the source with the standard library's ``ast`` only.

``worker/`` is what a worker container runs; ``heimdall_synth/`` is the user tooling
(CLI, export, plots, validate/repair, maintenance, training loader, demo, local services)
built on it. Every import statement counts, also the lazy ones inside functions: a lazy
import still makes the two modules depend on each other.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "heimdall_synth")
# What a worker may import beyond the standard library: the core dependencies of
# pyproject.toml (the extras plots / export / train / local are for heimdall_synth only).
CORE_DEPENDENCIES = {"psycopg", "pgmq", "numpy", "scipy", "numba", "minio", "urllib3", "alembic",
                     "sqlalchemy"}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the two packages."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(absolute imported name, line) of every import in a module, relative ones resolved;
    ``from X import Y`` gives ``X.Y`` when that is a module, else ``X``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in MODULES else base, node.lineno))
    return out


def _owner(imported: str) -> str | None:
    """The module of ours an imported name lands in (longest matching prefix), or None."""
    parts = imported.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in MODULES:
            return candidate
    return None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for imported, _ in _imports(name, path):
            owner = _owner(imported)
            if owner is not None and owner != name:
                graph[name].add(owner)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_tooling_package_exists_next_to_the_worker():
    assert "heimdall_synth" in MODULES and "heimdall_synth.cli" in MODULES, sorted(MODULES)
    for moved in ("cli", "export", "plots", "validate", "maintenance", "training", "demo",
                  "localservices", "progress"):
        assert f"worker.{moved}" not in MODULES, f"worker/{moved}.py belongs in heimdall_synth/"


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_worker_never_imports_the_tooling():
    bad = [f"{MODULES[name].relative_to(ROOT)}:{line} imports {imported}"
           for name in MODULES if name.split(".")[0] == "worker"
           for imported, line in _imports(name, MODULES[name])
           if imported.split(".")[0] == "heimdall_synth"]
    assert bad == []


def test_the_worker_imports_only_core_dependencies():
    allowed = set(sys.stdlib_module_names) | CORE_DEPENDENCIES | {"worker", "__future__"}
    bad = [f"{MODULES[name].relative_to(ROOT)}:{line} imports {imported}"
           for name in MODULES if name.split(".")[0] == "worker"
           for imported, line in _imports(name, MODULES[name])
           if imported and imported.split(".")[0] not in allowed]
    assert bad == []


def test_only_the_cli_knows_argparse():
    users = sorted({name for name, path in MODULES.items()
                    for imported, _ in _imports(name, path) if imported.split(".")[0] == "argparse"})
    assert users == ["heimdall_synth.cli"]


def _python_sources() -> list[Path]:
    files = [p for d in ("worker", "heimdall_synth", "bench") for p in (ROOT / d).rglob("*.py")]
    return sorted(files)


def test_only_the_database_boundary_opens_connections():
    """``psycopg.connect`` is called in worker/db.py only (tests aside): one URL precedence,
    one timeout policy, one retry policy for every caller."""
    bad = []
    for path in _python_sources():
        if path == ROOT / "worker" / "db.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            call = node.func if isinstance(node, ast.Call) else None
            if (isinstance(call, ast.Attribute) and call.attr == "connect"
                    and isinstance(call.value, ast.Name) and call.value.id == "psycopg"):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "psycopg" and any(
                    a.name == "connect" for a in node.names):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    # the shell scripts embed Python
    bad += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "scripts").iterdir())
            if p.is_file() and "psycopg.connect(" in p.read_text(errors="replace")]
    assert bad == []
