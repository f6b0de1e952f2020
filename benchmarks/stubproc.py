"""What the benchmarks share about the stub server they run as a subprocess: starting it and talking to it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def start_stub_process(script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``python SCRIPT --serve-stub ARGS…``; return the process and the base URL it prints on its first line."""
    return start_stub_command([sys.executable, script, "--serve-stub", *args])


def start_stub_command(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Run ``command`` (a stub server that prints its base URL on its first line) from the repository root; return
    the process and that URL."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline().strip() if process.stdout else ""
    if not line.startswith("http://127.0.0.1:"):
        process.kill()
        raise SystemExit(f"the stub server did not start (first line {line!r})")
    return process, line


def stub_http(base_url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET (or POST ``body`` to) ``path`` on the stub beside ``base_url``; the JSON reply."""
    url = base_url.removesuffix("/v1") + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
