r"""Value inertia: how far personas move a model's answers on moral-foundation scales.

For each moral-foundation dimension :math:`d` (care, fairness, loyalty, authority, sanctity, liberty), a model
answers a questionnaire (for example the Moral Foundations Questionnaire, Graham et al. 2011) once without a
persona (the *default* model) and under each persona :math:`q`; scores are normalised to [0, 1]. With
:math:`\bar y_{q}` the mean score of persona :math:`q` on :math:`d` and :math:`\bar y_0` the default model's:

* the distribution of persona means :math:`\{\bar y_q\}` (mean, SD, quantiles);
* the share of variance explained by persona, eta squared
  :math:`\eta^2 = SS_\text{between}/SS_\text{total} = \sum_q n_q(\bar y_q-\bar y)^2 / \sum_{q,i}(y_{qi}-\bar y)^2`
  over the persona rows (one-way ANOVA; Cohen 1988);
* how many personas fall on the same side of the scale midpoint :math:`m` as the default model:
  :math:`\#\{q:\operatorname{sign}(\bar y_q-m)=\operatorname{sign}(\bar y_0-m)\}` (a persona exactly at the
  midpoint counts as the same side only when the default is there too).

High ``share_same_side`` with low :math:`\eta^2` is value *inertia*: role-play changes the words more than the
values. Both summaries are tribunal's, built on these standard quantities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.frames import require_columns

__all__ = ["value_inertia"]


def value_inertia(
    data: pd.DataFrame,
    dimension: str = "dimension",
    persona: str = "persona_id",
    score: str = "score",
    baseline: str = "none",
    midpoint: float = 0.5,
) -> pd.DataFrame:
    """Value inertia per dimension.

    Args:
        data: One row per answer: dimension, persona and the 0–1 score (``NaN`` ignored).
        dimension: Column of the moral-foundation dimension.
        persona: Column of the persona; ``baseline`` marks the default (no-persona) model.
        score: Column of the score.
        baseline: Value of ``persona`` for the default model.
        midpoint: The scale midpoint (0.5 on a 0–1 scale).

    Returns:
        One row per dimension: ``dimension, default_mean, n_personas, persona_mean, persona_sd, persona_min,
        persona_q25, persona_median, persona_q75, persona_max, eta_squared, n_same_side, share_same_side``.
        ``default_mean`` and the side counts are ``NaN`` when the dimension has no baseline answers.
    """
    require_columns(data, [dimension, persona, score])
    frame = data[[dimension, persona]].assign(_y=pd.to_numeric(data[score], errors="raise").to_numpy(float))
    frame = frame.dropna(subset=["_y"])
    frame[persona] = frame[persona].astype(str)
    rows = []
    for dim, part in frame.groupby(dimension, observed=True, sort=True):
        base = part.loc[part[persona] == str(baseline), "_y"]
        personas = part[part[persona] != str(baseline)]
        default = float(base.mean()) if len(base) else np.nan
        stats = personas.groupby(persona, observed=True)["_y"].agg(["mean", "size"])
        means = stats["mean"].to_numpy()
        grand = personas["_y"].mean()
        ss_total = float(((personas["_y"] - grand) ** 2).sum())
        ss_between = float((stats["size"] * (stats["mean"] - grand) ** 2).sum())
        eta2 = ss_between / ss_total if ss_total > 0 else np.nan
        if np.isnan(default) or not len(means):
            same = np.nan
        else:
            same = float(np.sum(np.sign(means - midpoint) == np.sign(default - midpoint)))
        q = np.quantile(means, [0, 0.25, 0.5, 0.75, 1]) if len(means) else [np.nan] * 5
        rows.append(
            {
                "dimension": dim,
                "default_mean": default,
                "n_personas": len(means),
                "persona_mean": float(means.mean()) if len(means) else np.nan,
                "persona_sd": float(means.std(ddof=1)) if len(means) > 1 else np.nan,
                "persona_min": q[0],
                "persona_q25": q[1],
                "persona_median": q[2],
                "persona_q75": q[3],
                "persona_max": q[4],
                "eta_squared": eta2,
                "n_same_side": same,
                "share_same_side": same / len(means) if len(means) and not np.isnan(same) else np.nan,
            }
        )
    return pd.DataFrame(rows)
