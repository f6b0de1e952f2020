"""The shape of the ``analysis`` package: no import cycles, no private names across modules, light imports.

Read from the source with :mod:`ast` (every ``import`` statement, including those inside functions, since a lazy
import is still a dependency), so a violation names the file and line:

* the modules of ``analysis`` import each other without a cycle;
* no module imports a ``_private`` name (or a ``_private`` module) of another: what is shared is public in the
  module that owns it;
* ``analysis`` imports nothing from ``agents``, ``raters``, ``configs`` or ``graphs`` except the stdlib-only
  :mod:`graphs.tables`;
* no module is longer than :data:`MAX_LINES` lines unless it says why at its top (and is listed here);
* ``import analysis`` loads none of the heavy packages (a fresh interpreter checks ``sys.modules``).
"""

from __future__ import annotations

import ast
import graphlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import analysis

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "analysis"
#: A module longer than this needs a reason at its top and an entry in :data:`LONG_MODULES`.
MAX_LINES = 500
#: Module → the phrase of its docstring that says why it is long (none today).
LONG_MODULES: dict[str, str] = {}
#: Top-level packages ``analysis`` must not import (``graphs`` is allowed only for ``graphs.tables``).
FORBIDDEN = ("agents", "raters", "configs", "langgraph", "torch", "vllm", "transformers")
#: What ``import analysis`` must not load.
HEAVY = (
    "langgraph",
    "torch",
    "vllm",
    "transformers",
    "matplotlib",
    "agents",
    "raters",
    "configs",
    "statsmodels",
    "krippendorff",
    "rich",
    "pingouin",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, module, name)`` of each import in a file; ``name`` is ``None`` for ``import module``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the importing module's package
                base = _module_name(path).split(".")
                base = base if path.name == "__init__.py" else base[:-1]
                module = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.extend((node.lineno, module, alias.name) for alias in node.names)
    return found


def _target(module: str, name: str | None) -> str | None:
    """The ``analysis`` module an import depends on (``from pkg import submodule`` is the submodule)."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def _is_private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split("."))


def test_no_import_cycles_among_analysis_modules():
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for _, module, imported in _imports(path):
            target = _target(module, imported)
            if target is not None and target != name:
                graph[name].add(target)
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        # graphlib lists a cycle from dependency to dependant: reversed, each module imports the next
        pytest.fail(f"import cycle among analysis modules (each imports the next): {' -> '.join(exc.args[1][::-1])}")
    assert set(order) == set(MODULES)
    # The report layers: statistics do not import the report modules, and the report does not import the CLI.
    report_layer = {"analysis.tables", "analysis.render", "analysis.figures", "analysis.report"}
    for name in ("analysis.agreement", "analysis.toxicity", "analysis.refusal", "analysis.io"):
        assert not graph[name] & report_layer, name


def test_no_private_names_imported_across_modules():
    offences = []
    for path in MODULES.values():
        for line, module, imported in _imports(path):
            if not module.startswith("analysis"):
                continue
            if _is_private(module) or (imported is not None and imported.startswith("_")):
                offences.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {imported}")
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def test_analysis_imports_only_graphs_tables_from_the_project():
    offences = []
    for path in MODULES.values():
        for line, module, _ in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN or (top == "graphs" and module != "graphs.tables"):
                offences.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert not offences, "analysis may import graphs.tables and no other project package:\n" + "\n".join(offences)


def test_modules_are_short_or_say_why():
    for name, path in MODULES.items():
        n_lines = len(path.read_text().splitlines())
        if n_lines > MAX_LINES:
            reason = LONG_MODULES.get(name)
            assert reason is not None, f"{name} has {n_lines} lines (> {MAX_LINES}): split it, or say why at its top"
            assert reason in (ast.get_docstring(ast.parse(path.read_text())) or ""), name


def test_every_module_has_a_docstring_and_is_listed_in_the_package_docstring():
    listed = analysis.__doc__
    for name, path in MODULES.items():
        assert ast.get_docstring(ast.parse(path.read_text())), f"{name} has no module docstring"
        top_level = name.count(".") == 1
        if name != "analysis" and (top_level or path.name == "__init__.py"):
            assert f":mod:`{name}`" in listed, f"{name} is not listed in analysis/__init__.py's docstring"


def test_public_api_is_importable():
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None, name
    for name in MODULES:
        module = importlib.import_module(name)
        for exported in getattr(module, "__all__", ()):
            assert hasattr(module, exported), f"{name}.__all__ lists {exported!r}, which it does not define"


def test_import_is_light():
    code = (
        "import sys, analysis, analysis.io, analysis.report, analysis.agreement, analysis.studies;"
        f"heavy = set({list(HEAVY)!r});"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy));"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'graphs'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    heavy, graphs = out.stdout.strip().splitlines()
    assert heavy == "[]"
    assert graphs == "['graphs', 'graphs.tables']"
