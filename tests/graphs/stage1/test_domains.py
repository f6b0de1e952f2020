"""The harm domains: the rubric's ids and the BeaverTails keys (:mod:`graphs.stage1.domains`)."""

from __future__ import annotations

from graphs.datasets import BEAVERTAILS_CATEGORIES
from graphs.stage1 import DOMAIN_KEYS, DOMAINS
from raters.rubric import load_rubric


def test_domain_ids_match_the_rubric_and_beavertails_keys():
    assert load_rubric("beavertails").dimension_ids[:-1] == DOMAINS
    assert tuple(DOMAIN_KEYS.values()) == BEAVERTAILS_CATEGORIES
