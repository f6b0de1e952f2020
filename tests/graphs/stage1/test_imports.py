"""Stage I and the dataset loaders import no module that imports them back, and no private name of another module."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.helpers.imports import import_cycle, private_imports


@pytest.mark.parametrize("package", ["graphs.stage1", "graphs.datasets"])
def test_no_import_cycle(package):
    assert import_cycle(ROOT, package) is None


@pytest.mark.parametrize("package", ["graphs.stage1", "graphs.datasets"])
def test_no_private_name_is_imported_from_another_module(package):
    assert private_imports(ROOT, package) == []
