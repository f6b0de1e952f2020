"""Demo-SafetyBench stage I: build a harm-domain-balanced prompt benchmark (``tribunal bench build CONFIG``).

DICES samples (one per conversation and rater demographic profile), BeaverTails prompts or a file's prompts are
classified into the 14 BeaverTails harm domains by an LLM judge, thinly covered domains are filled with generated
prompts, near-duplicates are dropped with SimHash (within a demographic profile), and the benchmark is written
with per-domain counts. A study config's ``stage1`` section builds it before stage II rates it.

* :mod:`~graphs.stage1.graph`: the graph, drawn and explained node by node;
* :mod:`~graphs.stage1.state`: what flows through it;
* :mod:`~graphs.stage1.nodes`: the nodes (:class:`Stage1`);
* :mod:`~graphs.stage1.prompts`: loading the prompt source;
* :mod:`~graphs.stage1.dices`: DICES as samples, one per (conversation, rater demographic profile);
* :mod:`~graphs.stage1.sweep`: the benchmark each (δ, τ) pair would hold (the balanced-thresholds sweep);
* :mod:`~graphs.stage1.expander`: the expansion model's prompt (wording in ``expander.yaml``) and reply parsing;
* :mod:`~graphs.stage1.simhash`: SimHash fingerprints and near-duplicate removal;
* :mod:`~graphs.stage1.writer`: the output files;
* :mod:`~graphs.stage1.config`: reading a stage I config or a study config's ``stage1`` section;
* :mod:`~graphs.stage1.run`: the models, the classifier, :func:`run_stage1` and :func:`ensure_stage1`;
* :mod:`~graphs.stage1.domains`: the harm domains' rubric ids and BeaverTails keys.

The config schema is :mod:`configs.stage1`.
"""

from configs.schema import STAGE1_DIR, stage1_dir
from graphs.stage1.config import load_stage1_config, stage1_config
from graphs.stage1.domains import DOMAIN_KEYS, DOMAINS, RUBRIC
from graphs.stage1.graph import build_stage1_graph
from graphs.stage1.nodes import LoggedProgress, Stage1, Stage1Progress
from graphs.stage1.prompts import load_prompts
from graphs.stage1.run import CACHE_FILE, build_classifier, build_stage1_backends, ensure_stage1, run_stage1
from graphs.stage1.state import Classification, DomainCount, Stage1Prompt, Stage1Result, Stage1State
from graphs.stage1.writer import (
    BENCHMARK_FILE,
    COUNTS_FILE,
    DUPLICATES_FILE,
    SUMMARY_FILE,
    UNCLASSIFIED_FILE,
    benchmark_is_complete,
    benchmark_profiles,
    read_result,
)

__all__ = [
    "BENCHMARK_FILE",
    "CACHE_FILE",
    "COUNTS_FILE",
    "DOMAINS",
    "DOMAIN_KEYS",
    "DUPLICATES_FILE",
    "RUBRIC",
    "STAGE1_DIR",
    "SUMMARY_FILE",
    "UNCLASSIFIED_FILE",
    "Classification",
    "DomainCount",
    "LoggedProgress",
    "Stage1",
    "Stage1Progress",
    "Stage1Prompt",
    "Stage1Result",
    "Stage1State",
    "benchmark_is_complete",
    "benchmark_profiles",
    "build_classifier",
    "build_stage1_backends",
    "build_stage1_graph",
    "ensure_stage1",
    "load_prompts",
    "load_stage1_config",
    "read_result",
    "run_stage1",
    "stage1_config",
    "stage1_dir",
]
