"""The counterfactual target-group swap set (:mod:`graphs.datasets.swaps`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from graphs.datasets import DatasetError
from graphs.datasets.swaps import SWAP_EXPECTED, SWAP_TEXTS_PATH, load_swap_texts, swap_variants
from tests.conftest import STARTER
from tests.graphs.datasets.data import CJK, one_line

GROUPS = {
    "women": {"en": "women", "zh": "女性"},
    "immigrants": {"en": "immigrants", "zh": "移民"},
    "surfers": {"en": "surfers"},  # no Chinese name
}


def starter_groups() -> dict[str, dict[str, str]]:
    catalog = yaml.safe_load((STARTER / "targets.yaml").read_text(encoding="utf-8"))
    return {target["id"]: target["name"] for target in catalog["targets"]}


def test_the_built_in_set_spans_languages_and_degrees() -> None:
    texts = load_swap_texts()
    assert SWAP_TEXTS_PATH.is_file() and texts == load_swap_texts(SWAP_TEXTS_PATH)
    assert len({t.id for t in texts}) == len(texts) and len({t.version for t in texts}) == 1
    by_language = Counter(t.language for t in texts)
    assert set(by_language) == {"en", "zh"} and all(n >= 10 for n in by_language.values())
    for language in by_language:  # every language has benign, borderline and hostile texts
        assert {t.expected for t in texts if t.language == language} == set(SWAP_EXPECTED)
    assert all(t.text.count("{group}") == 1 for t in texts)
    assert all(bool(CJK.search(t.text)) == (t.language == "zh") for t in texts)
    assert not any(t.text.startswith("{group}") for t in texts if t.language == "en")  # no capital needed


def test_variants_differ_only_in_the_group_name() -> None:
    texts = load_swap_texts()
    variants = swap_variants(texts, GROUPS)
    base = {t.id: t for t in texts}
    assert len({v.item_id for v in variants}) == len(variants)
    for variant in variants:
        name = GROUPS[variant.group][variant.language]
        template = base[variant.base_id]
        assert variant.item_id == f"swap:{template.id}:{variant.group}"
        assert variant.text.replace(name, "{group}", 1) == template.text
        assert (variant.language, variant.expected) == (template.language, template.expected)
    for text in texts:  # with the names taken out, the variants of one text are the same string
        stripped = {v.text.replace(GROUPS[v.group][v.language], "") for v in variants if v.base_id == text.id}
        assert len(stripped) == 1


def test_chinese_texts_get_chinese_names_and_nameless_groups_are_skipped() -> None:
    texts = load_swap_texts()
    variants = swap_variants(texts, GROUPS)
    zh = [v for v in variants if v.language == "zh"]
    assert zh and all(v.group != "surfers" for v in zh)
    assert all(("女性" in v.text) == (v.group == "women") for v in zh)
    assert not any("women" in v.text or "immigrants" in v.text for v in zh)
    n_en = sum(t.language == "en" for t in texts)
    n_zh = len(texts) - n_en
    assert len(variants) == 3 * n_en + 2 * n_zh
    assert {v.group for v in variants if v.language == "en"} == set(GROUPS)


def test_the_starter_target_catalog_fills_every_text() -> None:
    groups = starter_groups()
    texts = load_swap_texts()
    variants = swap_variants(texts, groups)
    assert len(variants) == len(texts) * len(groups)
    assert all("{group}" not in v.text for v in variants)


def test_a_name_is_filled_in_one_pass() -> None:
    texts = load_swap_texts()[:1]
    (variant,) = swap_variants(texts, {"odd": {"en": "{group} fans"}})
    assert variant.text == texts[0].text.replace("{group}", "{group} fans")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{id: a, language: en, expected: benign, text: no slot here}", "texts\\[1\\].text: has no \\{group\\} slot"),
        ("{id: a, language: en, expected: rude, text: '{group} x'}", "texts\\[1\\].expected: must be one of"),
        ("{id: first, language: en, expected: benign, text: '{group} x'}", "texts\\[1\\].id: 'first' is used twice"),
        ("{id: a, language: english, expected: benign, text: '{group} x'}", "texts\\[1\\].language"),
        ("{id: A B, language: en, expected: benign, text: '{group} x'}", "texts\\[1\\].id"),
        ("{id: a, language: en, text: '{group} x'}", "texts\\[1\\].expected: expected a non-empty string"),
        ("{id: a, language: en, expected: benign, text: '{group} x', note: y}", "texts\\[1\\]: unknown field 'note'"),
    ],
)
def test_bad_swap_files_fail_in_one_line(tmp_path: Path, entry: str, expected: str) -> None:
    path = tmp_path / "swaps.yaml"
    first = "{id: first, language: en, expected: benign, text: 'I like {group}.'}"
    path.write_text(f'version: "1"\ntexts:\n  - {first}\n  - {entry}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=expected) as error:
        load_swap_texts(path)
    assert str(path) in one_line(error)


def test_missing_or_empty_swap_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="file not found"):
        load_swap_texts(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("version: '1'\ntexts: []\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="texts: expected a non-empty list"):
        load_swap_texts(empty)
    unversioned = tmp_path / "unversioned.yaml"
    unversioned.write_text("texts:\n  - {id: a, language: en, expected: benign, text: '{group}'}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="version: expected a version"):
        load_swap_texts(unversioned)
