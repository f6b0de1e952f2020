"""One lock for loading the heavy model runtimes (torch, transformers) and their models in worker threads.

Model code runs in worker threads (``asyncio.to_thread``) so that the event loop keeps serving other requests. Two
of those threads importing transformers, or loading models whose classes transformers imports lazily, at the same
moment (the embedded judge and the MiniLM rater of one panel, on the first chunk of an audit) can each be handed the
other's half-initialised module by Python's import deadlock avoidance, and ``from transformers import AutoModel``
then fails with "transformers is missing". Every first import of these runtimes and every model load holds
:data:`RUNTIME_LOCK`; inference does not, so loaded models still run side by side.
"""

from __future__ import annotations

import threading

#: Held while importing torch/transformers and while loading a model with them (re-entrant: a load imports too).
RUNTIME_LOCK = threading.RLock()

__all__ = ["RUNTIME_LOCK"]
