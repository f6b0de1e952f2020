"""The dataset loaders are pandas and the standard library: importing them loads no graph machinery."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_loaders_loads_no_langgraph_and_no_config_package():
    code = (
        "import sys, graphs.datasets; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langgraph', 'configs', 'agents', 'raters')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
