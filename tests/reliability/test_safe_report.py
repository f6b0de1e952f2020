"""Model output that is HTML or script is shown as text in ``report.html``, checked in a real headless Chromium.

The generations of a scripted run carry payloads that, if the report rendered them as markup, would change the
document: a ``<script>``, an ``<img onerror>``, an ``<svg onload>`` and a ``</pre>`` that tries to leave the
example block. Chromium loads the report, runs whatever scripts it finds, and dumps the resulting DOM: the
payloads' effects must be absent and their text present.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphs.cli import main
from tests.conftest import scripted_config
from tests.reliability.conftest import in_ci

CHROMIUM = Path("/usr/bin/chromium")
EFFECT = "document.title='PWNED';document.documentElement.setAttribute('data-pwned','{tag}')"
PAYLOADS = {
    "script": f"<script>{EFFECT.format(tag='script')}</script>",
    "img": f'<img src=x onerror="{EFFECT.format(tag="img")}">',
    "svg": f'<svg onload="{EFFECT.format(tag="svg")}"></svg>',
    "breakout": f"</pre></p><script>{EFFECT.format(tag='breakout')}</script><b>bold</b>",
}
TEXT = "Here is my answer. " + " ".join(PAYLOADS.values())


def chromium_args(profile: Path) -> list[str]:
    """Headless Chromium with nothing of its own going to the network, its profile in ``profile``."""
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",
    ]


def _chromium_dom(report: Path, profile: Path) -> str:
    command = [*chromium_args(profile), "--dump-dom", report.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_shows_html_payloads_as_text_in_chromium(tmp_path, write_config):
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail("/usr/bin/chromium is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium); CI installs it and runs this test")
    config = scripted_config()
    config["models"][0]["options"] = {"rules": [], "default": TEXT}
    config["grid"].update(languages=["en"], repeats=1)
    out = tmp_path / "run"
    ran = CliRunner().invoke(main, ["run", str(write_config(config)), "--out", str(out), "--no-progress"])
    assert ran.exit_code == 0, ran.output + ran.stderr
    reported = CliRunner().invoke(main, ["report", str(out)])
    assert reported.exit_code == 0, reported.output + reported.stderr
    report = out / "report.html"
    source = report.read_text(encoding="utf-8")
    assert html.escape(TEXT) in source  # the example generations are in the report, escaped

    # a control page with the same payloads unescaped proves that this Chromium runs such scripts
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><head><title>control</title></head><body>{TEXT}</body></html>")
    control_dom = _chromium_dom(control, tmp_path / "profile-control")
    assert "<title>PWNED</title>" in control_dom and "data-pwned=" in control_dom

    dom = _chromium_dom(report, tmp_path / "profile")
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None and title.group(1).startswith("tribunal report")
    assert "data-pwned=" not in dom
    assert "<b>bold</b>" not in dom and "<svg" not in dom and '<img src="x"' not in dom
    # the payloads are visible as text: escaped once in the serialized DOM, exactly as written
    for payload in PAYLOADS.values():
        assert html.escape(payload, quote=False) in dom
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
