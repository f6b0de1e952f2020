"""Benchmark of the regressions' joint tests: the HTZ test's pair sums, old against current, in one run.

Builds the analysis frame of a kept store as ``analyze_tables`` does (``load_run`` → ``analysis_frame``, toxicity
as the mean of the toxicity dimension's raters), then times ``analysis.regression.interaction_tests`` for the
refusal (logit) and toxicity (OLS) joint tests, once with the current ``htz_test`` and once with the verbatim
copy of the code it replaced (``tests/analysis/regression/test_htz_equal.py``, patched into
``analysis.regression.blocks``), alternating which side goes first in each round. It prints, per side, the
total time of ``interaction_tests`` and the part spent in ``htz_test``, the old/new ratios of the sums over
rounds, ``uptime``'s load before and after, and checks that both sides' tables are equal (``rtol`` 1e-10).

The HTZ cost depends on the number of cluster types, not of generations, so a small store shows it::

    python benchmarks/bench_analysis.py --run-dir /tmp/bench05 --scale 0.05 --no-report   # build once
    python benchmarks/bench_htz.py --run-dir /tmp/bench05 --rounds 2
    python benchmarks/bench_htz.py --run-dir /tmp/bench14 --rounds 1   # full scale (load_run ~20 s)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _frame(run_dir: Path):
    from analysis.io import analysis_frame, load_run
    from analysis.studies import pick_toxicity_dimension
    from analysis.tables import _scored_dimensions

    af = analysis_frame(load_run(run_dir))
    frame = af.frame.copy(deep=False)
    tox = pick_toxicity_dimension(_scored_dimensions(af), None)
    if tox is not None:
        frame["toxicity"] = frame[af.columns_for(tox)].mean(axis=1, skipna=True)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/bench05"))
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (old, new) or (new, old)")
    args = parser.parse_args()

    import pandas as pd

    import analysis.regression.blocks as blocks
    from analysis.regression.robust import htz_test as new_htz
    from tests.analysis.regression.test_htz_equal import old_htz_test

    print(f"load before: {_load()}")
    start = time.perf_counter()
    frame = _frame(args.run_dir)
    print(f"frame of {args.run_dir}: {len(frame):,} generations in {time.perf_counter() - start:.1f} s")
    outcomes = [("refusal", "logit")] + ([("toxicity", "ols")] if "toxicity" in frame.columns else [])
    sides = {"old": old_htz_test, "new": new_htz}
    totals = {s: 0.0 for s in sides}
    htz = {s: 0.0 for s in sides}
    tables: dict[str, list] = {}
    for rnd in range(args.rounds):
        for side in ("old", "new") if rnd % 2 == 0 else ("new", "old"):
            fn = sides[side]

            def timed(*a, fn=fn, side=side):
                t0 = time.perf_counter()
                out = fn(*a)
                htz[side] += time.perf_counter() - t0
                return out

            blocks.htz_test = timed
            t0 = time.perf_counter()
            tables[side] = [blocks.interaction_tests(frame, o, k, on_degenerate="skip") for o, k in outcomes]
            dt = time.perf_counter() - t0
            totals[side] += dt
            print(f"round {rnd + 1} {side}: interaction_tests {dt:.2f} s")
    blocks.htz_test = new_htz
    for a, b in zip(tables["new"], tables["old"], strict=True):
        pd.testing.assert_frame_equal(a, b, rtol=1e-10, atol=0)
    r = args.rounds
    print(f"interaction_tests per round: old {totals['old'] / r:.2f} s, new {totals['new'] / r:.2f} s "
          f"→ {totals['old'] / totals['new']:.2f}×")  # fmt: skip
    print(f"of which htz_test: old {htz['old'] / r:.2f} s, new {htz['new'] / r:.2f} s "
          f"→ {htz['old'] / htz['new']:.2f}×")  # fmt: skip
    print("tables equal (rtol 1e-10)")
    print(f"load after: {_load()}")


if __name__ == "__main__":
    main()
