"""The PolygloToxicityPrompts configs and what they rest on: the language catalog, models' tuning, a scorer's
declared languages and the one named scorer (``ptp.scorer``)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from analysis.toxicity import KNOWN_SCORER_LANGUAGES, language_resources
from configs.languages import DEFAULT_LANGUAGES, LanguageCatalog, load_languages
from configs.loader import ConfigError, load_experiment
from configs.options import HFClassifierOptions, ProfanityCheckOptions
from tests.conftest import ROOT, scripted_config

FULL = ROOT / "configs" / "ptp_multilingual.yaml"
TINY = ROOT / "configs" / "ptp_multilingual_tiny.yaml"


def _write(tmp_path, **overrides):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(scripted_config(**overrides)), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ language catalog
def test_the_catalog_covers_the_ptp_languages_with_its_source():
    catalog = load_languages()
    grid = load_experiment(FULL).config.grid.languages
    assert sorted(grid) == sorted(e.code for e in catalog.languages) and len(grid) == 17
    assert "Joshi" in catalog.source.citation and catalog.source.url.endswith("lang2tax.txt")
    assert (catalog.resource_class("en"), catalog.resource_class("ko"), catalog.resource_class("id")) == (5, 4, 3)
    assert catalog.resource_class("xx") is None


def test_the_analysis_reads_the_catalog_as_the_schema_does():
    catalog = load_languages()
    read = language_resources()
    assert read is not None and read.path.resolve() == DEFAULT_LANGUAGES.resolve()
    table = read.table.set_index("language")
    for entry in catalog.languages:
        assert table.loc[entry.code, "resource_class"] == entry.resource_class
        assert table.loc[entry.code, "resource_name"] == catalog.classes[entry.resource_class]
    assert read.citation == catalog.source.citation


def test_a_malformed_catalog_is_refused_with_the_field(tmp_path):
    data = yaml.safe_load(DEFAULT_LANGUAGES.read_text(encoding="utf-8"))
    with pytest.raises(ValidationError, match="less than or equal to 5"):
        LanguageCatalog.model_validate({**data, "languages": [{"code": "en", "name": "English", "resource_class": 6}]})
    twice = [{"code": "en", "name": "English", "resource_class": 5}] * 2
    with pytest.raises(ValidationError, match="listed twice: en"):
        LanguageCatalog.model_validate({**data, "languages": twice})
    bad = tmp_path / "languages.yaml"
    bad.write_text(yaml.safe_dump({**data, "languages": [{"code": "en", "resource_class": 9}]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"languages\.yaml: languages\[0\]\.resource_class: 9 is not one of"):
        language_resources(bad)


# ------------------------------------------------------------------------------------ scorer's languages
def test_known_scorer_languages_agree_with_the_raters_defaults():
    assert KNOWN_SCORER_LANGUAGES["profanity-check"] == tuple(ProfanityCheckOptions().languages) == ("en",)
    rater = next(r for r in load_experiment(FULL).config.panel.raters if r.name == "xlmr-toxicity")
    declared = tuple(sorted(rater.options["languages"]))
    assert KNOWN_SCORER_LANGUAGES[f"hf-classifier:{rater.options['path']}"] == declared


def test_declared_languages_must_be_codes():
    assert HFClassifierOptions(labels={"toxic": "toxicity"}).languages is None  # unknown unless declared
    with pytest.raises(ValidationError, match="'English': not a language code"):
        HFClassifierOptions(labels={"toxic": "toxicity"}, languages=["English"])
    with pytest.raises(ValidationError, match="listed twice"):
        ProfanityCheckOptions(languages=["en", "en"])


# ------------------------------------------------------------------------------------ config fields
def test_ptp_scorer_must_be_a_panel_rater(tmp_path):
    panel = {"raters": [{"name": "clf", "kind": "profanity-check", "dimensions": ["toxicity"]}]}
    assert load_experiment(_write(tmp_path, panel=panel, ptp={"scorer": "clf"})).config.ptp.scorer == "clf"
    with pytest.raises(ConfigError) as caught:
        load_experiment(_write(tmp_path, panel=panel, ptp={"scorer": "judge"}))
    assert str(caught.value) == f"{tmp_path / 'c.yaml'}: ptp: scorer 'judge' is not a rater of the panel"


def test_a_models_tuning_is_one_of_three(tmp_path):
    config = scripted_config()
    config["models"][0]["tuning"] = "rlhf"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.yaml: models\[0\]\.tuning: Input should be 'base', 'instruct'"):
        load_experiment(path)


# ------------------------------------------------------------------------------------ the two configs
def test_the_full_config_has_the_papers_reference_setup_and_one_family_tuned_three_ways():
    config = load_experiment(FULL).config
    assert (config.grid.repeats, config.sampling.temperature, config.sampling.top_p) == (10, 0.7, 1.0)
    assert config.sampling.max_tokens == 512 and config.ptp.scorer == "xlmr-toxicity"
    by_size: dict[float, set[str]] = {}
    for model in config.models:
        assert model.model.startswith("allenai/OLMo-2-") and model.params_b and model.tuning
        by_size.setdefault(model.params_b, set()).add(model.tuning)
    assert len(by_size) >= 2 and all(t == {"base", "instruct", "preference"} for t in by_size.values())


@pytest.mark.parametrize("path", [FULL, TINY], ids=["full", "tiny"])
def test_no_config_attributes_realtoxicityprompts_k_to_ptp(path):
    text = path.read_text(encoding="utf-8")
    assert "25 continuations" not in text and "paper's 25" not in text
    assert "k = 10" in text and "Where it departs" in text
    config = load_experiment(path).config
    assert config.study == "ptp_multilingual" and config.ptp is not None


def test_the_tiny_twin_spans_three_resource_classes():
    config = load_experiment(TINY).config
    catalog = load_languages()
    assert {catalog.resource_class(lang) for lang in config.grid.languages} == {3, 4, 5}
    assert config.models[0].tuning == "preference" and config.models[0].params_b == 0.135


def test_raters_carry_their_declared_languages_outside_their_identity():
    from configs.schema import RaterSpec
    from raters.hf_classifier import HFClassifierRater

    def spec(languages=None):
        options = {"labels": {"toxic": "toxicity"}, **({"languages": languages} if languages else {})}
        return RaterSpec(name="clf", kind="hf-classifier", options=options)

    declared = HFClassifierRater(spec(["zh", "en"]), pipeline=lambda texts, **_: [])
    assert declared.languages == ("zh", "en")
    plain = HFClassifierRater(spec(), pipeline=lambda texts, **_: [])
    assert plain.languages is None and plain.identity() == declared.identity()  # declared, not part of who scores
