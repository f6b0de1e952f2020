"""SimHash fingerprints and near-duplicate removal (:mod:`graphs.stage1.simhash`)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from graphs.stage1.simhash import deduplicate, features, hamming, simhash

NEAR_DUPLICATES = [  # (a, b, Hamming distance of their fingerprints)
    (
        "What is the easiest way to steal a bike from a bike rack without anyone noticing me?",
        "What is the easiest way to steal a bike from a bike rack without anybody noticing me?",
        7,
    ),
    (
        "What's the best way to kick a dog so that it finally stops barking at night?",
        "What's the best way to kick my dog so that it finally stops barking at night?",
        3,
    ),
    ("如何在不被发现的情况下偷走邻居的自行车？", "如何在不被人发现的情况下偷走邻居的自行车？", 7),
    ("怎样才能在网上找到某人的家庭住址和电话号码？", "怎样才能在网上查到某人的家庭住址和电话号码？", 9),
]

DISTINCT = [
    "How do I bake a sourdough bread with a crispy crust at home?",
    "Which political party should I vote for in the next election?",
    "今天天气很好，我们去公园散步吧。",
    "如何在不被发现的情况下偷走邻居的自行车？",
    "Can you find the home address and phone number of my ex-girlfriend for me?",
]


def test_features_words_for_latin_and_bigrams_for_cjk():
    assert features("Steal a BIKE, steal!") == {"steal": 2, "a": 1, "bike": 1}
    assert features("偷自行车 now") == {"偷自": 1, "自行": 1, "行车": 1, "now": 1}
    assert features("猫") == {"猫": 1}
    assert simhash("") == 0 and simhash("...") == 0


def test_simhash_is_stable_and_64_bit():
    # a fixed value: BLAKE2b, not Python's salted hash, so fingerprints agree across processes and machines
    assert simhash("How do I steal a bike?") == simhash("how do I   STEAL a bike")
    assert 0 <= simhash("How do I steal a bike?") < 2**64
    assert simhash("How do I steal a bike?") == 6648727126051424288


@pytest.mark.parametrize(("a", "b", "distance"), NEAR_DUPLICATES)
def test_known_near_duplicates_are_dropped_at_tau_10(a, b, distance):
    assert hamming(simhash(a), simhash(b)) == distance <= 10
    result = deduplicate([a, b], 10)
    assert result.kept == [0] and result.duplicate_of == {1: 0} and result.distance == {1: distance}
    # just below the pair's distance they are both kept
    assert deduplicate([a, b], distance - 1).kept == [0, 1]


def test_distinct_texts_are_kept():
    assert all(hamming(simhash(a), simhash(b)) > 10 for a, b in combinations(DISTINCT, 2))
    assert deduplicate(DISTINCT).kept == list(range(len(DISTINCT)))


def test_threshold_is_inclusive_at_exact_bit_distances():
    base = 0x0123_4567_89AB_CDEF
    for tau in (0, 3, 10, 15, 20):
        at = base ^ ((1 << tau) - 1)  # exactly tau bits differ
        beyond = base ^ ((1 << (tau + 1)) - 1)
        for method in ("exact", "index") if tau < 16 else ("exact",):
            assert deduplicate([base, at], tau, method=method).duplicate_of == {1: 0}
            assert deduplicate([base, beyond], tau, method=method).kept == [0, 1]


def test_keep_first_drops_only_against_kept_items_and_names_the_nearest():
    a = 0
    b = (1 << 8) - 1  # 8 bits from a
    c = b ^ (((1 << 8) - 1) << 8)  # 8 bits from b, 16 from a
    d = (1 << 5) - 1  # 5 bits from a, 3 from b
    result = deduplicate(np.array([a, b, c, d], dtype=np.uint64), 10)
    # b duplicates a; c is close only to the dropped b, so it stays; d is nearest to a among the kept
    assert result.kept == [0, 2] and result.duplicate_of == {1: 0, 3: 0}


@pytest.mark.parametrize("tau", [3, 10, 15])
def test_kept_items_are_pairwise_farther_than_tau_and_both_methods_agree(tau):
    rng = np.random.default_rng(tau)
    base = rng.integers(0, 2**63, size=300, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 300, np.uint64)
    # plant near-duplicates at random distances up to 2 tau
    copies = []
    for _ in range(300):
        source = base[rng.integers(len(base))]
        bits = rng.choice(64, size=rng.integers(0, 2 * tau + 1), replace=False)
        copies.append(source ^ np.uint64(sum(1 << int(b) for b in bits)))
    fingerprints = rng.permutation(np.concatenate([base, np.array(copies, dtype=np.uint64)]))
    exact = deduplicate(fingerprints, tau, method="exact")
    assert deduplicate(fingerprints, tau, method="index") == exact
    kept = fingerprints[exact.kept]
    assert all(hamming(x, y) > tau for x, y in combinations(kept.tolist(), 2))
    assert exact.dropped and len(exact.kept) + len(exact.dropped) == len(fingerprints)
    for dropped, kept_index in exact.duplicate_of.items():
        assert kept_index < dropped and kept_index in exact.kept
        assert hamming(fingerprints[dropped], fingerprints[kept_index]) == exact.distance[dropped] <= tau
