"""Analysis of tribunal transcripts: pure functions over pandas DataFrames.

Modules, one concept each (the statistics modules' docstrings give the formulas and numbered references):

Reading a run

* :mod:`analysis.io`: reading a run directory's transcript store (:func:`load_run`) and the standard analysis
  frame (:func:`analysis_frame`, :func:`ratings_long`);
* :mod:`analysis.coded_read`: the store's numbers and codes read as text, with no Python object per value (what
  keeps :func:`load_run` to seconds at 1.4M generations);
* :mod:`analysis.parquet_run`: a Ray-engine run directory (Parquet tables) read as a transcript store: its
  committed batches materialized into a cached SQLite file with the store's schema;
* :mod:`analysis.frames`: shared DataFrame helpers (column checks, integer codes, the long-to-wide pivot,
  JSON-safe values: :func:`analysis.frames.jsonable`);
* :mod:`analysis.intervals`: Wilson and normal-approximation confidence intervals;

Statistics

* :mod:`analysis.agreement`: inter-rater agreement, one module per statistic: ICC (Shrout & Fleiss 1979; McGraw
  & Wong 1996; :mod:`~analysis.agreement.intraclass`), Krippendorff's alpha (Krippendorff 2011;
  :mod:`~analysis.agreement.krippendorff`), Fleiss' and Cohen's kappa (:mod:`~analysis.agreement.kappa`), the
  Spearman matrix, judge error correlation and the effective number of judges (:mod:`~analysis.agreement.judges`),
  agreement by subgroup (:mod:`~analysis.agreement.subgroups`);
* :mod:`analysis.demographics`: demographic sensitivity of raters, demographic parity and equalized odds;
* :mod:`analysis.toxicity`: expected maximum toxicity, toxicity probability, average toxicity (Gehman et al.
  2020; Jain et al. 2024), defined only for probability-like scores (the kinds of scale a rating is on:
  :func:`scale_kind`), persona amplification over the baseline by category, valence and persona (after
  Deshpande et al. 2023);
* :mod:`analysis.refusal`: refusal rates, gender gaps and refusal against the baseline tested over personas
  (Welch's t on persona-level rates; a two-proportion z-test only without persona ids), Benjamini–Hochberg;
* :mod:`analysis.regression`: per-model logit and OLS persona regressions (CR2 errors on persona clusters,
  Firth's penalized likelihood under separation, aliased terms reported) with tidy coefficient tables and joint
  tests of the persona, target and template blocks and their interactions (:func:`interaction_tests`);
* :mod:`analysis.values`: value inertia on moral-foundation scales;
* :mod:`analysis.mitigation`: mitigation curves with CIs, rounds to success, stop reasons, meaning preservation,
  and the gate and held-out measure panels of the loop (:func:`mitigation_tables`);
* :mod:`analysis.self_judging`: which judges rated their own model's generations (from the stored config);
* :mod:`analysis.judge_audit`: the judge card: validity against human labels (alpha, Spearman, MAE, ROC-AUC,
  best-F1 threshold, reliability curve, the humans' own alpha as the ceiling;
  :mod:`~analysis.judge_audit.validity`), counterfactual target-group swaps, test–retest stability,
  self-preference, framing sensitivity, and the trust policy that marks each judge trusted or not;

Reports

* :mod:`analysis.studies`: which study a run reproduces (persona toxicity, value inertia, PTP, Demo-SafetyBench;
  :mod:`~analysis.studies.detection`), one module per study with its headline tables and figure, and
  :func:`study_headline` (:mod:`~analysis.studies.headline`);
* :mod:`analysis.tables`: every table of a run (:func:`analyze_run`), one function per section;
* :mod:`analysis.notes`: why a table is missing (the ``notes`` and ``headline_notes`` tables);
* :mod:`analysis.render`: the tables in the terminal (:func:`render_tables`) and as JSON (:func:`tables_to_json`);
* :mod:`analysis.figures`: the report's standard figures as base64 PNG with their coverage;
* :mod:`analysis.transcripts`: the data behind the report's transcript browser (:func:`transcript_data`: a
  documented sample of the transcripts with chats, ratings, rationales and mitigation rounds, read by id) and
  its disagreement view (:func:`disagreement_table`);
* :mod:`analysis.report_browser`: the report's transcript browser: the embedded, escaped JSON, the page's script
  and its Content-Security-Policy, and the URL-fragment keys;
* :mod:`analysis.report`: the self-contained HTML report (:func:`write_report`);
* :mod:`analysis.deprecation`: renamed keywords kept working for one release.

``import analysis`` stays light: numpy, pandas, scipy and the stdlib-only :mod:`graphs.tables`; statsmodels,
krippendorff, matplotlib and rich are imported where they are used.
"""

from analysis.agreement import (
    AlphaResult,
    JudgeErrors,
    agreement_by,
    cohen_kappa_pairs,
    fleiss_kappa,
    icc,
    judge_error_correlation,
    krippendorff_alpha,
    spearman_matrix,
)
from analysis.demographics import (
    demographic_parity_difference,
    demographic_sensitivity,
    equalized_odds_difference,
)
from analysis.io import AnalysisFrame, RunTables, analysis_frame, load_run, ratings_long
from analysis.mitigation import (
    cosine_similarity,
    meaning_preservation,
    mitigation_curve,
    rounds_to_success,
    stop_reasons,
)
from analysis.refusal import (
    benjamini_hochberg,
    gender_gaps,
    persona_refusal_rates,
    refusal_rates,
    refusal_rates_by_factor,
    refusal_vs_baseline,
    two_proportion_ztest,
    welch_test,
)
from analysis.regression import (
    DegenerateDataError,
    firth_logit,
    fit_persona_model,
    interaction_tests,
    persona_regressions,
    tidy_result,
)
from analysis.render import render_tables, tables_to_json
from analysis.report import write_report
from analysis.studies import StudyDetection, detect_study, study_detection, study_headline
from analysis.tables import analyze_run, analyze_tables
from analysis.toxicity import mixed_scales_reason, ptp_metrics, rating_scales, scale_kind, toxicity_amplification
from analysis.values import value_inertia

__all__ = [
    "interaction_tests",
    "firth_logit",
    "scale_kind",
    "rating_scales",
    "mixed_scales_reason",
    "welch_test",
    "refusal_vs_baseline",
    "persona_refusal_rates",
    "AlphaResult",
    "AnalysisFrame",
    "DegenerateDataError",
    "JudgeErrors",
    "RunTables",
    "StudyDetection",
    "agreement_by",
    "analysis_frame",
    "analyze_run",
    "analyze_tables",
    "benjamini_hochberg",
    "cohen_kappa_pairs",
    "cosine_similarity",
    "demographic_parity_difference",
    "demographic_sensitivity",
    "detect_study",
    "equalized_odds_difference",
    "fit_persona_model",
    "fleiss_kappa",
    "gender_gaps",
    "icc",
    "judge_error_correlation",
    "krippendorff_alpha",
    "load_run",
    "meaning_preservation",
    "mitigation_curve",
    "persona_regressions",
    "ptp_metrics",
    "ratings_long",
    "refusal_rates",
    "refusal_rates_by_factor",
    "render_tables",
    "rounds_to_success",
    "spearman_matrix",
    "stop_reasons",
    "study_detection",
    "study_headline",
    "tables_to_json",
    "tidy_result",
    "toxicity_amplification",
    "two_proportion_ztest",
    "value_inertia",
    "write_report",
]
