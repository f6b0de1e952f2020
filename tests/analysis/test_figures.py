"""The standard figures (:mod:`analysis.figures`): each is drawn or says why it is absent."""

from __future__ import annotations

from analysis import analyze_run
from analysis.figures import Figure, standard_figures
from tests.analysis.stores import tiny_store


def test_standard_figures_draw_or_say_why_not(tmp_path):
    drawn = standard_figures(analyze_run(tiny_store(tmp_path / "rated")))
    assert [f.title for f in drawn] == [
        "Agreement heatmap: toxicity",
        "Toxicity by persona category",
        "Refusal by persona gender",
        "Mitigation curve",
    ]
    assert all(isinstance(f, Figure) and f.png and f.caption.startswith("Coverage: ") for f in drawn)
    absent = standard_figures(analyze_run(tiny_store(tmp_path / "bare", ratings=False)))
    heatmap, toxicity, refusal, mitigation = absent  # no ratings, no loop; the refusal flags are there
    assert all(f.png is None and f.caption.startswith("Absent: ") for f in (heatmap, toxicity, mitigation))
    assert refusal.png and refusal.caption == "Coverage: 2 of 3 round-0 generations with a known refusal flag."
    assert absent[3].caption == "Absent: no cell went through the mitigation loop."
    title, png, caption = absent[0]  # a Figure is the (title, png, caption) tuple the report always used
    assert (title, png) == ("Agreement heatmap", None)
