"""Inter-rater agreement: ICC, Krippendorff's alpha, Fleiss' and Cohen's kappa, judge error correlation.

All functions take a long-format DataFrame, one row per rating, in the convention of pingouin, and name its
columns the same way: ``units`` (the rated things: targets, subjects, generations), ``raters`` and ``ratings``.

Modules, one statistic each (their docstrings give the formulas and numbered references):

* :mod:`analysis.agreement.intraclass`: the six intraclass correlations (Shrout & Fleiss 1979; McGraw & Wong
  1996) in pingouin's layout;
* :mod:`analysis.agreement.krippendorff`: Krippendorff's alpha (Krippendorff 2011) at every level, with missing
  ratings and a unit bootstrap;
* :mod:`analysis.agreement.kappa`: Fleiss' kappa (Fleiss 1971) and Cohen's kappa per rater pair (Cohen 1960,
  1968);
* :mod:`analysis.agreement.judges`: the Spearman matrix between raters, judges' error correlation and the
  effective number of independent judges (Bretherton et al. 1999);
* :mod:`analysis.agreement.subgroups`: all of them per subgroup in one tidy table (:func:`agreement_by`).
"""

from analysis.agreement.intraclass import ICC_DESCRIPTIONS, ICC_TYPES, icc, icc_from_matrix
from analysis.agreement.judges import JudgeErrors, judge_error_correlation, spearman_matrix
from analysis.agreement.kappa import cohen_kappa_pairs, fleiss_kappa, fleiss_kappa_from_table
from analysis.agreement.krippendorff import AlphaResult, Level, krippendorff_alpha
from analysis.agreement.subgroups import AGREEMENT_METRICS, agreement_by

__all__ = [
    "AGREEMENT_METRICS",
    "ICC_DESCRIPTIONS",
    "ICC_TYPES",
    "AlphaResult",
    "JudgeErrors",
    "Level",
    "agreement_by",
    "cohen_kappa_pairs",
    "fleiss_kappa",
    "fleiss_kappa_from_table",
    "icc",
    "icc_from_matrix",
    "judge_error_correlation",
    "krippendorff_alpha",
    "spearman_matrix",
]
