"""Which study a run is: from its config (latest row) or its data (:mod:`analysis.studies.detection`)."""

from __future__ import annotations

from analysis import load_run
from analysis.studies import detect_study, read_run_config, study_detection
from tests.analysis.stores import make_store
from tests.analysis.studies.stores import demo_store, persona_toxicity_store, ptp_store, value_inertia_store


def test_detection_config_latest_row_and_inference(tmp_path):
    # The latest runs row counts; a config study wins over what the data suggest.
    run = persona_toxicity_store(tmp_path / "a", configs=[{"study": "value_inertia"}, {"study": "ptp_multilingual"}])
    assert read_run_config(run) == {"study": "ptp_multilingual"}
    d = study_detection(run)
    assert (d.study, d.source) == ("ptp_multilingual", "config")
    # An unknown study name: inferred from the data, and the reason says so.
    run = persona_toxicity_store(tmp_path / "b", configs=[{"study": "nonsense"}])
    d = study_detection(load_run(run))
    assert (d.study, d.source) == ("persona_toxicity", "data") and "'nonsense'" in d.reason
    # Inference for each study, and none.
    assert detect_study(persona_toxicity_store(tmp_path / "c")) == "persona_toxicity"
    assert detect_study(value_inertia_store(tmp_path / "d")) == "value_inertia"
    assert detect_study(ptp_store(tmp_path / "e", {})) == "ptp_multilingual"
    assert detect_study(demo_store(tmp_path / "f")) == "demo_safetybench"  # named in the config
    framed = make_store(
        tmp_path / "g",
        [{"key": "a"}],
        [
            {
                "cell": "a",
                "rater": "j",
                "kind": "llm-judge",
                "framing": ("gender", "male"),
                "dimension": "x",
                "score": 1.0,
            }
        ],
    )
    assert detect_study(framed) == "demo_safetybench"
    no_baseline = make_store(
        tmp_path / "h",
        [{"key": "a", "persona_id": "p"}],
        [{"cell": "a", "rater": "t", "kind": "hf-classifier", "dimension": "toxicity", "score": 0.3}],
    )
    assert detect_study(no_baseline) is None
    # Moral-foundation ratings without moral-probe cells are not value inertia.
    loose = make_store(
        tmp_path / "i",
        [{"key": "a", "persona_id": "p"}],
        [{"cell": "a", "rater": "t", "kind": "llm-judge", "dimension": "care", "score": 0.3}],
    )
    assert detect_study(loose) is None
