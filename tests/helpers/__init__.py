"""Helpers for the tests and benchmarks, kept out of the installed packages.

* :mod:`tests.helpers.stub_server`: a loopback OpenAI-compatible chat server with scripted replies, latency and
  injected faults (``python -m tests.helpers.stub_server`` from the repository root);
* :mod:`tests.helpers.synthetic`: a transcript store with known structure at any scale, in the real schema.
"""
