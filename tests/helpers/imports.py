"""Import cycles among a package's modules, found by reading their source (nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path


def _imported_names(root: Path, folder: Path) -> dict[str, set[str]]:
    """Each module below ``folder`` (dotted, relative to ``root``) → every name its import statements name."""
    found: dict[str, set[str]] = {}
    for file in sorted(folder.rglob("*.py")):
        parts = file.relative_to(root).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[module] = names
    return found


def module_imports(root: Path, package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (dotted, below ``root``) → the modules of that package it imports, anywhere in
    its code (lazy imports inside functions count too)."""
    found = _imported_names(root, root.joinpath(*package.split(".")))
    return {module: {n for n in names if n in found and n != module} for module, names in found.items()}


def import_cycle(root: Path, package: str) -> list[str] | None:
    """The first import cycle among ``package``'s modules, as ``[a, b, ..., a]``; ``None`` when there is none.

    A module imports its package's ``__init__`` too; that edge is left out, since Python runs it first anyway.
    """
    return find_cycle(module_imports(root, package))


def private_imports(root: Path, package: str) -> list[str]:
    """``module: name from other`` for every private name (``_name``) a module of ``package`` imports."""
    found = []
    for module in module_imports(root, package):
        file = root.joinpath(*module.split("."))
        file = file / "__init__.py" if file.is_dir() else file.with_suffix(".py")
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.extend(f"{module}: {a.name} from {node.module}" for a in node.names if a.name.startswith("_"))
    return found


def project_imports(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Like :func:`module_imports`, over several top-level packages at once: each module → the modules of any of
    ``packages`` it imports."""
    found: dict[str, set[str]] = {}
    for package in packages:
        found.update(_imported_names(root, root / package))
    return {module: {n for n in names if n in found and n != module} for module, names in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first cycle of an import graph as ``[a, b, ..., a]``, leaving out a module's edges to the packages
    that contain it (Python runs those first anyway); ``None`` when there is none."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            if module.startswith(imported + "."):
                continue
            cycle = visit(imported, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return None
