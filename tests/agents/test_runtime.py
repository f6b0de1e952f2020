"""Loading the embedded model and a transformers-based rater in two threads at once, in a fresh process: both
load (they once raced on transformers' first import: "transformers is missing" for the embedded judge of an audit
whose MiniLM rater was importing it at the same moment)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import threading
from agents.embedded import load_model
from raters.prototype import load_encoder, minilm_path

start, errors = threading.Barrier(2), []

def run(load):
    start.wait()
    try:
        load()
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")

loads = (lambda: load_model(None), lambda: load_encoder(minilm_path()))
threads = [threading.Thread(target=run, args=(f,)) for f in loads]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("errors:", errors)
raise SystemExit(1 if errors else 0)
"""


def test_two_threads_load_transformers_models_at_once():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
