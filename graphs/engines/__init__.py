"""The engines that run the experiment graph: the step both share (:mod:`graphs.engines.chunk`), the Ray engine
(:mod:`graphs.engines.ray_engine`, ``tribunal run --engine ray``) and the Parquet run directory it writes
(:mod:`graphs.engines.parquet_run`). The local engine is :func:`graphs.runner.run_experiment`.

Nothing here imports ray at import time: ``pip install 'tribunal[ray]'`` is needed only to run on Ray.
"""
