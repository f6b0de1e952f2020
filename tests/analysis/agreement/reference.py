"""Reference data and helpers of the agreement tests: published tables, long format, pingouin's ICC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)


# Their Table 4: ICC(1,1) .17, ICC(2,1) .29, ICC(3,1) .71, ICC(1,4) .44, ICC(2,4) .62, ICC(3,4) .91.
SHROUT_FLEISS_ICC = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62, "ICC3k": 0.91}


PINGOUIN_TYPES = {
    "ICC(1,1)": "ICC1",
    "ICC(A,1)": "ICC2",
    "ICC(C,1)": "ICC3",
    "ICC(1,k)": "ICC1k",
    "ICC(A,k)": "ICC2k",
    "ICC(C,k)": "ICC3k",
}


def long_from_matrix(y: np.ndarray, unit="target", rater="judge", rating="score") -> pd.DataFrame:
    n, k = y.shape
    return pd.DataFrame({unit: np.repeat(np.arange(n), k), rater: np.tile(np.arange(k), n), rating: y.ravel()}).dropna()


def pingouin_icc(data, targets, raters, ratings, **kw):
    pingouin = pytest.importorskip("pingouin")
    old = pingouin.options.get("round.column.CI95")
    pingouin.options["round.column.CI95"] = None
    try:
        res = pingouin.intraclass_corr(data, targets, raters, ratings, **kw)
    finally:
        pingouin.options["round.column.CI95"] = old
    res["Type"] = res["Type"].map(lambda t: PINGOUIN_TYPES.get(t, t))
    return res.set_index("Type")
