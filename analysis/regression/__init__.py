r"""Persona regressions: what persona, target group and template do to refusal and toxicity, alone and together.

For each generator model separately (models differ too much to share coefficients) we fit

.. math::
    \operatorname{logit} P(\text{refusal}_i) = \beta_0 + \beta_{\text{persona}[i]} + \gamma_{\text{target}[i]}
        + \delta_{\text{template}[i]} \;(+\; \eta_{\text{persona}\times\text{target}}
        + \theta_{\text{persona}\times\text{template}})

    \text{toxicity}_i = \beta_0 + \beta_{\text{persona}[i]} + \gamma_{\text{target}[i]}
        + \delta_{\text{template}[i]} \;(+\;\eta + \theta) + \varepsilon_i

Persona category is treatment-coded against the no-persona baseline (``'none'``), so each persona coefficient is
the difference from the model without a persona, holding target and template fixed; target category and template
(id or style) use their first level (alphabetical) as reference. Everything runs on sufficient statistics of the
cells (cluster × covariate pattern: :mod:`~analysis.regression.design`), which reproduces the row-level fits
exactly (checked against statsmodels in the tests) at a fraction of the cost.

The persona is the unit
    Generations of one persona share its prompt, so for a claim about persona categories the sample is the
    personas (the 4 of the quickstart, the 56 of the study), not the generations. Errors are cluster-robust on
    the persona, with the CR2 small-sample correction and t tests on Satterthwaite degrees of freedom under a
    random-persona-intercept working model [1]_ [2]_ [3]_ [7]_ (:mod:`~analysis.regression.robust`); the
    baseline, a fixed condition rather than a sampled persona, clusters on its prompts.

    Why CR2: it stays honest at the small numbers of personas real studies have. CR1 with the normal
    (statsmodels' default, and what this module did before) printed ``se 5.7e-16, p 0`` for a category carried
    by one persona; a random-intercept mixed model (MixedLM) uses the normal with a between-persona variance
    estimated from a handful of personas (and often on its boundary, 0); GEE's robust errors need the same
    small-sample corrections. With CR2 the degrees of freedom of a category with two personas come out near 1
    and its interval is as wide as the data say. In simulations with random persona intercepts (ICC 0.2;
    ``tests/analysis/regression``) the test of a null category effect rejected 6.4% at α = 0.05 with 2 personas
    per category (2,000 simulations) and 5.8% with 5 (1,000), where errors that treat generations as independent
    rejected 12–16%.

    Fewer than ``min_clusters`` (20) personas add a note to every persona term. A coefficient whose variance
    rests on a single cluster (a category with one persona: its dummy is that persona's indicator, so its
    residuals are zero in exactly the direction that matters) is *not identified* by the clusters: NaN SE,
    interval and p, with a note, never a tiny SE. Without a cluster column (``cluster=None``) generations are
    treated as independent (HC3 for OLS, model-based errors for the logit, both with the normal as statsmodels
    reports them), and persona terms say that this is a claim about these generations, not about categories.
Separation
    A logit with a persona category, or a persona × target cell, where no generation was refused (or every one
    was) has an infinite MLE. It is detected by linear programming and fitted with Firth's penalized likelihood
    [4]_ [5]_ (:mod:`~analysis.regression.logistic`), so one zero-refusal level no longer throws away the whole
    model; the separated coefficients get profile penalized-likelihood intervals and tests and a note.
Aliasing
    A column that is a linear combination of earlier ones (a template style one-to-one with the template id,
    collinear target and template) is dropped and listed with a note, as R reports ``NA``, instead of a
    pseudo-inverse that splits its effect arbitrarily.
Jointly
    :func:`interaction_tests` tests each block (persona, target, template; persona × target, persona × template
    id and style) jointly: HTZ cluster-robust Wald F tests [6]_, penalized likelihood-ratio tests for separated
    blocks (:mod:`~analysis.regression.blocks`).

Degenerate data
    A model whose outcome is constant, whose baseline rows are missing or that has a single persona level raises
    :class:`DegenerateDataError` (a ``ValueError`` naming the model and the cause); :func:`persona_regressions`
    can skip such models instead (``on_degenerate="skip"``, reasons in ``result.attrs["skipped"]``). A p-value
    is never exactly 0 (floored at 1e-300, with a note).

References
----------
.. [1] Bell, R. M. & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear regression with
       multi-stage samples. *Survey Methodology* 28(2), 169–181.
.. [2] Pustejovsky, J. E. & Tipton, E. (2018). Small-sample methods for cluster-robust variance estimation and
       hypothesis testing in fixed effects models. *Journal of Business & Economic Statistics* 36(4), 672–683.
.. [3] Cameron, A. C. & Miller, D. L. (2015). A practitioner's guide to cluster-robust inference. *Journal of
       Human Resources* 50(2), 317–372.
.. [4] Firth, D. (1993). Bias reduction of maximum likelihood estimates. *Biometrika* 80(1), 27–38.
.. [5] Heinze, G. & Schemper, M. (2002). A solution to the problem of separation in logistic regression.
       *Statistics in Medicine* 21(16), 2409–2419.
.. [6] Tipton, E. & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of moderators and model fit
       using robust variance estimation in meta-regression. *J. Educational and Behavioral Statistics* 40(6).
.. [7] Imbens, G. W. & Kolesár, M. (2016). Robust standard errors in small samples: some practical advice.
       *Review of Economics and Statistics* 98(4), 701–712.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from analysis.regression import interaction_tests
>>> rng = np.random.default_rng(1)
>>> personas = {"none": "none", **{f"p{i}": ("teacher", "critic", "poet")[i % 3] for i in range(24)}}
>>> rows = [(pid, cat, t, m) for pid, cat in personas.items() for t in "ab" for m in "xyz" for _ in range(3)]
>>> data = pd.DataFrame(rows, columns=["persona_id", "persona_category", "target_category", "template_id"])
>>> data = data.assign(model="m", toxicity=rng.normal(0.3, 0.1, len(data)))
>>> tests = interaction_tests(data, "toxicity", "ols", templates=("template_id",))
>>> tests["block"].tolist()  # doctest: +NORMALIZE_WHITESPACE
['persona_category', 'target_category', 'template_id', 'persona_category × target_category',
 'persona_category × template_id']
>>> tests["test"].unique().tolist(), int(tests["n_clusters"].iloc[0])  # 24 personas, 6 baseline prompts
(['HTZ Wald F (CR2)'], 30)
"""

from analysis.regression.blocks import BLOCK_TEST_COLUMNS, block_tests, interaction_tests
from analysis.regression.coefficients import (
    TIDY_COLUMNS,
    coefficient_table,
    fit_persona_model,
    persona_regressions,
    tidy_result,
)
from analysis.regression.design import DegenerateDataError
from analysis.regression.fit import FittedModel, fit_model
from analysis.regression.logistic import firth_logit

__all__ = [
    "BLOCK_TEST_COLUMNS",
    "TIDY_COLUMNS",
    "DegenerateDataError",
    "FittedModel",
    "block_tests",
    "coefficient_table",
    "firth_logit",
    "fit_model",
    "fit_persona_model",
    "interaction_tests",
    "persona_regressions",
    "tidy_result",
]
