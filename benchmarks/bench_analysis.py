"""Benchmark of ``analysis`` at the seeds' scale: 1.4M generations × 3 raters.

Builds a synthetic transcript store (the real SQLite schema) in a temporary run directory, then, in one run:

1. the full analysis (``analyze_run`` + ``tables_to_json``, what ``tribunal analyze RUN --json`` does) in a fresh
   child process, reporting wall time and the child's peak RSS;
2. ``analysis.icc`` against ``pingouin.intraclass_corr`` on the same subsample (pingouin's time grows with the
   number of targets; both are timed on identical data), plus ``icc`` alone on all targets;
3. ``analysis.krippendorff_alpha`` against ``krippendorff.alpha`` on identical data: a 5-point scale on all
   units (where the package's dense arrays fit), and the 0.01-resolution scores on a subsample (the package's
   ``units × values × values`` array does not fit at full size), with tracemalloc peaks;
4. the HTML report (``analysis.report.write_report``, what ``tribunal report RUN`` does, ``max_transcripts``
   2000) in a fresh child process: wall time with its split (``load_run``, the tables, the browser payload and
   its parts, the figures, the HTML tables, the assembly and writing), the child's peak RSS and the size of
   ``report.html`` with the share of its parts (``--no-report`` skips it).

Usage::

    python benchmarks/bench_analysis.py              # full scale (building the store takes a few minutes)
    python benchmarks/bench_analysis.py --scale 0.05 # quick run
    python benchmarks/bench_analysis.py --run-dir /tmp/bench14 --report-only  # only step 4, on a kept store
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED_GENERATIONS = 1_400_000


def _timed(fn, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM`` of ``/proc/self/status`` where there is one.

    ``ru_maxrss`` is not used where ``VmHWM`` exists: Linux carries it over ``execve``, so a child started while
    the parent was large reports the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def child_analyze(run_dir: str) -> None:
    """Run in a fresh process: time the full analysis and report peak RSS as JSON."""
    start = time.perf_counter()
    import analysis

    imported = time.perf_counter()
    tables = analysis.analyze_run(run_dir)
    analyzed = time.perf_counter()
    payload = analysis.tables_to_json(tables)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": imported - start,
                "analyze_s": analyzed - imported,
                "json_s": done - analyzed,
                "total_s": done - start,
                "peak_rss_mb": _peak_rss_mb(),
                "tables": {k: len(v) for k, v in tables.items()},
                "json_bytes": len(payload),
            }
        )
    )


#: Functions timed inside ``write_report`` (module, name, label): wrapped in the module they are looked up in, so
#: one real ``write_report`` call gives the split. Times are inclusive, so the browser payload contains its parts.
REPORT_STAGES = (
    ("analysis.report", "load_run", "load_run"),
    ("analysis.report", "tables_of_run", "tables (analyze_tables)"),
    ("analysis.tables", "run_card_rows", "  judge card from the run (run_card_rows)"),
    ("analysis.tables", "analysis_frame", "  analysis_frame"),
    ("analysis.tables", "study_headline", "  the study's headline tables"),
    ("analysis.tables", "persona_regressions", "  persona_regressions"),
    ("analysis.regression", "interaction_tests", "  interaction_tests (joint tests, HTZ)"),
    ("analysis.tables", "_agreement", "  agreement tables"),
    ("analysis.tables", "mitigation_tables", "  mitigation tables"),
    ("analysis.report", "browser_payload", "browser payload"),
    ("analysis.report_browser", "disagreement_table", "  disagreement_table (payload, top 50)"),
    ("analysis.report_browser", "transcript_data", "  transcript_data"),
    ("analysis.transcripts", "disagreement_table", "    disagreement_table (sample, top 100)"),
    ("analysis.transcripts", "_scores", "    _scores"),
    ("analysis.transcripts", "_choose", "    _choose"),
    ("analysis.transcripts", "_transcripts", "    _transcripts (SQLite reads of the sample)"),
    ("analysis.report", "browser_section", "browser section (script_json)"),
    ("analysis.report", "standard_figures", "standard figures"),
    ("analysis.report", "headline_figure", "headline figure"),
    ("analysis.report", "_table_html", "HTML tables (to_html)"),
    ("analysis.report", "_example_texts", "example texts"),
)


def child_report(run_dir: str, max_transcripts: int) -> None:
    """Run in a fresh process: time ``write_report`` with its split, and report peak RSS and sizes as JSON."""
    start = time.perf_counter()
    import importlib

    import analysis.report

    imported = time.perf_counter()
    stages: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {"browser section": 0, "figures (base64 PNG)": 0, "HTML tables": 0}

    def wrap(module, name: str, label: str) -> None:
        fn = getattr(module, name)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                entry = stages.setdefault(label, {"s": 0.0, "calls": 0, "rss_mb": 0.0})
                entry["s"] += time.perf_counter() - t
                entry["calls"] += 1
                entry["rss_mb"] = _peak_rss_mb()  # peak so far

        setattr(module, name, timed)

    for module_name, name, label in REPORT_STAGES:
        module = importlib.import_module(module_name)
        if hasattr(module, name):  # a stage another version of the tables does not have is left out
            wrap(module, name, label)
    report = analysis.report
    section, figures, table_html = report.browser_section, report.standard_figures, report._table_html
    report.browser_section = lambda payload: _counted(sizes, "browser section", section(payload))
    report.standard_figures = lambda tables: _counted_figures(sizes, figures(tables))
    report._table_html = lambda *a, **k: _counted(sizes, "HTML tables", table_html(*a, **k))
    t0 = time.perf_counter()
    out = report.write_report(run_dir, max_transcripts=max_transcripts)
    done = time.perf_counter()
    top_level_s = sum(v["s"] for k, v in stages.items() if not k.startswith(" "))
    print(
        json.dumps(
            {
                "import_s": imported - start,
                "write_report_s": done - t0,
                "total_s": done - start,
                "stages": stages,
                "rest_s": done - t0 - top_level_s,
                "peak_rss_mb": _peak_rss_mb(),
                "html_bytes": out.stat().st_size,
                "sizes": sizes,
            }
        )
    )


def _counted(sizes: dict[str, int], key: str, parts: list[str]) -> list[str]:
    sizes[key] += sum(len(p.encode("utf-8")) for p in parts)
    return parts


def _counted_figures(sizes: dict[str, int], figures: list) -> list:
    sizes["figures (base64 PNG)"] += sum(len(f.png or "") for f in figures)
    return figures


def report_step(run_dir: Path, max_transcripts: int) -> None:
    """Step 4: ``write_report`` in a fresh child process, printed with its split."""
    out = subprocess.run(
        [sys.executable, __file__, "--child-report", str(run_dir), "--max-transcripts", str(max_transcripts)],
        capture_output=True,
        text=True,
        check=True,
    )
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    total = rep["write_report_s"]
    print(
        f"report (write_report, max_transcripts {max_transcripts}): {rep['total_s']:.1f} s incl. import "
        f"{rep['import_s']:.1f} s; peak RSS {rep['peak_rss_mb']:.0f} MB; report.html "
        f"{rep['html_bytes'] / 1e6:.2f} MB"
    )
    for _, _, label in REPORT_STAGES:
        v = rep["stages"].get(label)
        if v is None:
            continue
        calls = f" ×{v['calls']}" if v["calls"] > 1 else ""
        print(
            f"  {label:<48} {v['s']:7.2f} s {100 * v['s'] / total:5.1f} %{calls:<5} (peak RSS so far "
            f"{v['rss_mb']:.0f} MB)"
        )
    print(f"  {'assembly and writing (the rest)':<48} {rep['rest_s']:7.2f} s {100 * rep['rest_s'] / total:5.1f} %")
    shares = ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in rep["sizes"].items())
    print(f"  report.html parts: {shares}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 1.4M generations (default 1)")
    parser.add_argument("--raters", type=int, default=3)
    parser.add_argument("--pingouin-targets", type=int, default=2_000_000, help="cap on targets given to pingouin")
    parser.add_argument("--kripp-units", type=int, default=5_000, help="subsample for the package at 0.01 steps")
    parser.add_argument("--run-dir", type=Path, default=None, help="reuse/keep a run directory")
    parser.add_argument("--no-report", action="store_true", help="skip timing write_report (step 4)")
    parser.add_argument("--report-only", action="store_true", help="only step 4 (write_report), on --run-dir")
    parser.add_argument("--max-transcripts", type=int, default=2000, help="write_report's max_transcripts")
    parser.add_argument("--child-analyze", help=argparse.SUPPRESS)
    parser.add_argument("--child-report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_analyze:
        child_analyze(args.child_analyze)
        return
    if args.child_report:
        child_report(args.child_report, args.max_transcripts)
        return

    import krippendorff
    import numpy as np
    import pandas as pd
    import pingouin

    import analysis
    from tests.helpers.synthetic import synthetic_run

    pingouin.options["round.column.CI95"] = None
    n = int(SEED_GENERATIONS * args.scale)
    tmp = tempfile.TemporaryDirectory(prefix="tribunal-bench-")
    run_dir = args.run_dir or Path(tmp.name) / "run"
    print(f"# analysis benchmark: {n:,} generations × {args.raters} raters (scale {args.scale})")
    if not (run_dir / "transcripts.sqlite").exists():
        t, _ = _timed(
            lambda: synthetic_run(run_dir, n_generations=n, n_raters=args.raters, n_models=4, n_personas=100, seed=0)
        )
        print(f"built synthetic store in {t:.1f} s: {(run_dir / 'transcripts.sqlite').stat().st_size / 1e6:.0f} MB")
    if args.report_only:
        report_step(run_dir, args.max_transcripts)
        tmp.cleanup()
        return

    # 1. Full analysis in a fresh process (peak RSS of that process only).
    out = subprocess.run(
        [sys.executable, __file__, "--child-analyze", str(run_dir)], capture_output=True, text=True, check=True
    )
    full = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"full analysis (analyze_run + tables_to_json): {full['total_s']:.1f} s "
        f"(import {full['import_s']:.1f}, analyze {full['analyze_s']:.1f}, json {full['json_s']:.1f}); "
        f"peak RSS {full['peak_rss_mb']:.0f} MB; {len(full['tables'])} tables"
    )

    # 2. ICC vs pingouin on identical data.
    tables = analysis.load_run(run_dir)
    long = analysis.ratings_long(tables)
    long = long[long["dimension"].astype(str) == "toxicity"][["generation_id", "rater", "score"]]
    t_all, res = _timed(lambda: analysis.icc(long, "generation_id", "rater", "score", nan_policy="omit"))
    n_targets = res.attrs["n_targets"]
    print(f"icc on all {n_targets:,} complete targets ({len(long):,} ratings): {t_all:.3f} s")
    complete = long[
        long["generation_id"].isin(long.groupby("generation_id")["score"].count().loc[lambda s: s == args.raters].index)
    ]
    ids = complete["generation_id"].drop_duplicates()
    m = min(args.pingouin_targets, len(ids))
    sample = complete[complete["generation_id"].isin(ids.sample(m, random_state=0))]
    sample_str = sample.assign(rater=sample["rater"].astype(str))
    t_pg, ref = _timed(lambda: pingouin.intraclass_corr(sample_str, "generation_id", "rater", "score"), repeat=2)
    t_ours, mine = _timed(lambda: analysis.icc(sample, "generation_id", "rater", "score"), repeat=3)
    t_ours_str, _ = _timed(lambda: analysis.icc(sample_str, "generation_id", "rater", "score"), repeat=3)
    diff = float(np.max(np.abs(ref["ICC"].to_numpy() - mine["ICC"].to_numpy())))
    print(
        f"icc vs pingouin.intraclass_corr on {m:,} targets: pingouin {t_pg:.3f} s, icc {t_ours:.3f} s "
        f"(categorical raters, as load_run gives) → {t_pg / t_ours:.1f}×; with str raters {t_ours_str:.3f} s → "
        f"{t_pg / t_ours_str:.1f}×; max |ΔICC| {diff:.1e}"
    )
    if m < n_targets:
        print(
            f"  (pingouin on all {n_targets:,} targets would take about {t_pg * n_targets / m:.0f} s "
            f"if it scaled linearly; icc took {t_all:.2f} s)"
        )

    # 3. Krippendorff's alpha vs the krippendorff package on identical data.
    def reliability(frame: pd.DataFrame) -> np.ndarray:
        return frame.pivot(index="rater", columns="generation_id", values="score").to_numpy()

    likert = long.assign(score=np.round(long["score"] * 4) / 4)
    rd = reliability(likert)
    t_k, a_k = _timed(lambda: krippendorff.alpha(reliability_data=rd, level_of_measurement="interval"))
    t_m, a_m = _timed(lambda: analysis.krippendorff_alpha(likert, "generation_id", "rater", "score"))
    mem_k = _peak(lambda: krippendorff.alpha(reliability_data=rd, level_of_measurement="interval"))
    mem_m = _peak(lambda: analysis.krippendorff_alpha(likert, "generation_id", "rater", "score"))
    print(
        f"alpha, 5-point scale, {rd.shape[1]:,} units: krippendorff.alpha {t_k:.2f} s / {mem_k / 1e6:.0f} MB, "
        f"krippendorff_alpha {t_m:.2f} s / {mem_m / 1e6:.0f} MB → {t_k / t_m:.1f}× time; "
        f"|Δα| {abs(a_k - a_m):.1e}"
    )
    units = long["generation_id"].drop_duplicates()
    small = long[long["generation_id"].isin(units.sample(min(args.kripp_units, len(units)), random_state=0))]
    rd_small = reliability(small)
    t_k, a_k = _timed(lambda: krippendorff.alpha(reliability_data=rd_small, level_of_measurement="interval"))
    t_m, a_m = _timed(lambda: analysis.krippendorff_alpha(small, "generation_id", "rater", "score"), repeat=3)
    print(
        f"alpha, 0.01-step scores, {rd_small.shape[1]:,} units: krippendorff.alpha {t_k:.2f} s, "
        f"krippendorff_alpha {t_m:.3f} s → {t_k / t_m:.0f}×; |Δα| {abs(a_k - a_m):.1e}"
    )
    t_full, a_full = _timed(lambda: analysis.krippendorff_alpha(long, "generation_id", "rater", "score"))
    mem_full = _peak(lambda: analysis.krippendorff_alpha(long, "generation_id", "rater", "score"))
    print(
        f"krippendorff_alpha, 0.01-step scores, all {long['generation_id'].nunique():,} units: {t_full:.2f} s, "
        f"{mem_full / 1e6:.0f} MB (the package would need a "
        f"{long['generation_id'].nunique() * long['score'].nunique() ** 2 * 8 / 1e9:.0f} GB array)"
    )
    print(f"peak RSS of this (parent) process: {_peak_rss_mb():.0f} MB")

    # 4. The HTML report in a fresh process (peak RSS of that process only).
    if not args.no_report:
        report_step(run_dir, args.max_transcripts)
    tmp.cleanup()


if __name__ == "__main__":
    main()
