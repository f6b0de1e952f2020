"""Experiment configs, their catalogs and the pydantic schema that validates them.

* :mod:`configs.base`: what every schema shares (ids, language codes, localized texts, :class:`ModelSpec`);
* :mod:`configs.schema`: the experiment config (models, grid, panel, mitigation, the ``stage1`` section);
* :mod:`configs.stage1`: Demo-SafetyBench stage I, as a config of its own or a study config's section;
* :mod:`configs.catalog_schema`: the study catalogs (moral probes, persona attribute pools);
* :mod:`configs.personas_random`: randomized personas drawn from those pools;
* :mod:`configs.loader`: loading a config and its catalogs, every problem as one ``file: field: problem`` line.

Imports run one way, ``base`` ← ``stage1`` ← ``schema`` ← ``catalog_schema`` ← ``loader``, so there is no cycle.
"""
