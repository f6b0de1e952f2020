"""The house rules of the code base, checked by reading the source: no import cycles, no private names across
modules, packages import only what DESIGN.md's package table allows, no test helper in an installed package,
and no module over 500 lines without a reason written at its top."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.helpers.imports import find_cycle, project_imports

PACKAGES = ("agents", "configs", "raters", "graphs", "analysis")
# what each package may import of the others (DESIGN.md, "Packages"); graphs may import everything
ALLOWED = {
    "configs": set(),
    "agents": {"configs"},
    "raters": {"agents", "configs"},
    "analysis": {"graphs.tables"},
}
MAX_LINES = 500


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return project_imports(ROOT, PACKAGES)


def test_no_import_cycle_anywhere(graph):
    assert find_cycle(graph) is None


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a.x": {"a"}, "a": {"a.x"}}) is None  # a module importing its own package is no cycle


def test_packages_import_only_what_the_design_allows(graph):
    wrong = []
    for module, imported in graph.items():
        top = module.split(".")[0]
        if top not in ALLOWED:
            continue
        for name in imported:
            other = name.split(".")[0]
            if other == top:
                continue
            if not any(name == allowed or name.startswith(allowed + ".") or allowed == other
                       for allowed in ALLOWED[top]):  # fmt: skip
                wrong.append(f"{module} imports {name}")
    assert not wrong


def test_no_private_name_is_imported_from_another_module():
    found = []
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module:
                    private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__doc__"]
                    parts = node.module.split(".")
                    if private or any(p.startswith("_") and p != "__future__" for p in parts):
                        found.append(f"{file.relative_to(ROOT)}: {node.module} {private}")
    assert not found


def test_installed_packages_do_not_import_test_helpers():
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            assert "from tests" not in file.read_text(encoding="utf-8"), file


def test_long_modules_say_why_at_their_top():
    unexplained = []
    for package in PACKAGES:
        for file in (ROOT / package).rglob("*.py"):
            text = file.read_text(encoding="utf-8")
            if text.count("\n") > MAX_LINES and "one module because" not in text[:3000]:
                unexplained.append(f"{file.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not unexplained


def test_import_analysis_stays_light():
    code = (
        "import sys, analysis;"
        "heavy = {'langgraph', 'torch', 'vllm', 'transformers', 'langchain_core', 'openai'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
