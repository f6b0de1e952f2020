"""SimHash fingerprints and near-duplicate removal for prompt sets (Demo-SafetyBench stage I).

**Fingerprint** (Charikar 2002; Manku, Jain & Das Sarma 2007). A text becomes weighted features: after NFKC
normalisation and lower-casing, runs of letters or digits in Latin and other space-separated scripts are words,
and runs of CJK characters (Han, kana, Hangul) become overlapping character bigrams (a lone CJK character is a
unigram), because those scripts do not separate words with spaces. Each feature's weight is its count. Every
feature is hashed to 64 bits with BLAKE2b (stable across processes and machines, unlike Python's ``hash``); bit
``k`` of the fingerprint is 1 when the weights of the features whose hash has bit ``k`` set outweigh those whose
hash has it clear. Similar texts share most features, so their fingerprints differ in few bits: the Hamming
distance between fingerprints estimates how different two texts are. A text with no features hashes to 0.

**Near-duplicate removal** at Hamming distance ``<= tau`` keeps the first occurrence: item ``j`` is dropped when
some *kept* item ``i < j`` lies within ``tau`` bits; it is reported as a duplicate of the nearest such item
(the earliest on ties). Because only kept items can cause a drop, kept items are pairwise more than ``tau``
apart, and a chain ``a ~ b ~ c`` where ``a`` and ``c`` are far apart keeps ``a`` and ``c``.

**Finding the close pairs** without comparing all of them (multi-index hashing, Norouzi, Punjani & Fleet 2012).
Split the 64 bits into four 16-bit blocks. If two fingerprints differ in at most ``tau`` bits, then by the
pigeonhole principle at least one block differs in at most ``r = floor(tau / 4)`` bits. So for each block and each
of the ``sum_{k<=r} C(16, k)`` bit patterns of weight at most ``r``, the items whose block equals another item's
block XOR that pattern are candidates (found with sorted arrays and ``searchsorted`` in numpy); each candidate pair
is then checked exactly. Nothing within ``tau`` is missed. For ``tau = 10`` (``r = 2``) there are 137 patterns per
block and random fingerprints collide with probability about 0.8 %, so few pairs are checked. For ``tau >= 16``
(``r >= 4``, 2,517 patterns per block, most pairs become candidates) and for small sets, every pair is compared
instead, in row blocks with numpy's XOR and ``bitwise_count``. Both methods return the same result.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from configs.stage1 import DEFAULT_MAX_DISTANCE

#: Up to this many fingerprints, ``method="auto"`` compares every pair (faster than indexing small sets).
EXACT_UP_TO = 4096

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")
_BLOCKS = 4
_BLOCK_BITS = 16
_ALL_BITS = np.arange(64, dtype=np.uint64)


def features(text: str) -> Counter[str]:
    """The weighted features of a text: words outside CJK runs, character bigrams inside them."""
    counts: Counter[str] = Counter()
    normalised = unicodedata.normalize("NFKC", text).lower()
    for cjk, word in _TOKEN.findall(normalised):
        if word:
            counts[word] += 1
        elif len(cjk) == 1:
            counts[cjk] += 1
        else:
            counts.update(cjk[i : i + 2] for i in range(len(cjk) - 1))
    return counts


def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")


def simhash(text: str) -> int:
    """The 64-bit SimHash fingerprint of ``text`` (an ``int`` in ``[0, 2**64)``)."""
    counts = features(text)
    if not counts:
        return 0
    hashes = np.array([_feature_hash(f) for f in counts], dtype=np.uint64)
    weights = np.array(list(counts.values()), dtype=np.float64)
    bits = ((hashes[:, None] >> _ALL_BITS) & np.uint64(1)).astype(np.float64)
    votes = weights @ (2.0 * bits - 1.0)
    return sum(1 << int(k) for k in np.flatnonzero(votes > 0))


def simhashes(texts: Iterable[str]) -> np.ndarray:
    """Fingerprints of many texts as a ``uint64`` array."""
    return np.array([simhash(t) for t in texts], dtype=np.uint64)


def hamming(a: int, b: int) -> int:
    """The number of bits in which two fingerprints differ."""
    return (int(a) ^ int(b)).bit_count()


@dataclass(frozen=True)
class Deduplication:
    """The result of :func:`deduplicate`.

    Attributes:
        kept: indices of the kept items, in input order.
        duplicate_of: for each dropped item, the kept item it duplicated (the nearest; the earliest on ties).
        distance: for each dropped item, its Hamming distance to that kept item.
        max_distance: the threshold τ used.
    """

    kept: list[int]
    duplicate_of: dict[int, int] = field(default_factory=dict)
    distance: dict[int, int] = field(default_factory=dict)
    max_distance: int = DEFAULT_MAX_DISTANCE

    @property
    def dropped(self) -> list[int]:
        return sorted(self.duplicate_of)


def deduplicate(
    items: Sequence[str] | np.ndarray,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    method: str = "auto",
) -> Deduplication:
    """Drop near-duplicates at Hamming distance ``<= max_distance``, keeping the first occurrence.

    Args:
        items: texts, or their fingerprints (a ``uint64`` array or a sequence of ints).
        max_distance: τ, from 0 (exact fingerprint matches only) to 64.
        method: ``"index"`` (multi-index hashing on four 16-bit blocks; needs τ < 16), ``"exact"`` (every pair
            compared) or ``"auto"`` (the index for large sets with τ < 16, else every pair).

    Returns:
        The kept indices and, for every dropped index, the kept index it duplicates.
    """
    if not 0 <= max_distance <= 64:
        raise ValueError(f"max_distance must be between 0 and 64, not {max_distance}")
    if method not in ("auto", "index", "exact"):
        raise ValueError(f"method must be 'auto', 'index' or 'exact', not {method!r}")
    fingerprints = _as_fingerprints(items)
    n = len(fingerprints)
    if method == "auto":
        method = "index" if n > EXACT_UP_TO and max_distance < _BLOCK_BITS else "exact"
    if method == "index" and max_distance >= _BLOCK_BITS:
        raise ValueError("the block index needs max_distance < 16; use method='exact'")
    if method == "index":
        first, second = _indexed_pairs(fingerprints, max_distance)
    else:
        first, second = _all_close_pairs(fingerprints, max_distance)
    return _keep_first(n, fingerprints, first, second, max_distance)


def deduplicate_within(
    fingerprints: Sequence[int] | np.ndarray,
    groups: Sequence[Hashable],
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> Deduplication:
    """:func:`deduplicate` inside each group only (Demo-SafetyBench: a demographic profile), in global indices.

    Items of different groups are never duplicates of each other, however close: a conversation under one
    profile is another sample than the same conversation under another profile.

    Args:
        fingerprints: the items' fingerprints, in order.
        groups: each item's group (any hashable value; one group for all is :func:`deduplicate`).
        max_distance: τ.
    """
    fp = _as_fingerprints(fingerprints) if len(fingerprints) else np.empty(0, np.uint64)
    if len(groups) != len(fp):
        raise ValueError(f"{len(groups)} groups for {len(fp)} fingerprints")
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    kept: list[int] = []
    duplicate_of: dict[int, int] = {}
    distance: dict[int, int] = {}
    for indices in members.values():
        local = deduplicate(fp[indices], max_distance)
        kept.extend(indices[i] for i in local.kept)
        duplicate_of.update({indices[j]: indices[i] for j, i in local.duplicate_of.items()})
        distance.update({indices[j]: d for j, d in local.distance.items()})
    return Deduplication(sorted(kept), duplicate_of, distance, max_distance)


def _as_fingerprints(items: Sequence[str] | np.ndarray) -> np.ndarray:
    if isinstance(items, np.ndarray):
        return items.astype(np.uint64, copy=False)
    if len(items) and all(isinstance(i, str) for i in items):
        return simhashes(items)  # type: ignore[arg-type]
    return np.array([int(i) for i in items], dtype=np.uint64)


def _all_close_pairs(fp: np.ndarray, tau: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``i < j`` within ``tau`` bits, comparing all pairs in row blocks of about 4M cells."""
    n = len(fp)
    rows = max(1, (1 << 22) // max(n, 1))
    firsts, seconds = [], []
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        distances = np.bitwise_count(fp[start:stop, None] ^ fp[None, :])
        i, j = np.nonzero(distances <= tau)
        i += start
        later = j > i
        firsts.append(i[later])
        seconds.append(j[later])
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def _patterns(radius: int) -> np.ndarray:
    """All 16-bit patterns with at most ``radius`` bits set."""
    found = [0]
    for k in range(1, radius + 1):
        found.extend(sum(1 << b for b in bits) for bits in combinations(range(_BLOCK_BITS), k))
    return np.array(found, dtype=np.uint64)


def _indexed_pairs(fp: np.ndarray, tau: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``i < j`` within ``tau`` bits, from candidates that share a block up to ``tau // 4`` bits."""
    n = len(fp)
    firsts, seconds = [], []
    mask = np.uint64((1 << _BLOCK_BITS) - 1)
    for block in range(_BLOCKS):
        values = (fp >> np.uint64(block * _BLOCK_BITS)) & mask
        order = np.argsort(values, kind="stable")
        # a table over all 2**16 block values: where each value's run starts in `order`, and how long it is
        counts = np.bincount(values.astype(np.int64), minlength=1 << _BLOCK_BITS)
        starts = np.cumsum(counts) - counts
        for pattern in _patterns(tau // _BLOCKS):
            probes = (values ^ pattern).astype(np.int64)
            lo, sizes = starts[probes], counts[probes]
            if not sizes.any():
                continue
            source = np.repeat(np.arange(n), sizes)
            offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            target = order[np.repeat(lo, sizes) + offsets]
            keep = (source < target) & (np.bitwise_count(fp[source] ^ fp[target]) <= tau)
            firsts.append(source[keep])
            seconds.append(target[keep])
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    # a pair close in several blocks is found several times
    codes = np.unique(np.concatenate(firsts) * n + np.concatenate(seconds))
    return codes // n, codes % n


def _keep_first(n: int, fp: np.ndarray, first: np.ndarray, second: np.ndarray, tau: int) -> Deduplication:
    distances = np.bitwise_count(fp[first] ^ fp[second]).astype(np.int64)
    # later item first, then the nearest earlier item, then the earliest: decisions only look backwards
    order = np.lexsort((first, distances, second))
    kept = np.ones(n, dtype=bool)
    duplicate_of: dict[int, int] = {}
    distance: dict[int, int] = {}
    for i, j, d in zip(first[order].tolist(), second[order].tolist(), distances[order].tolist(), strict=True):
        if kept[j] and kept[i]:
            kept[j] = False
            duplicate_of[j] = i
            distance[j] = d
    return Deduplication(
        kept=np.flatnonzero(kept).tolist(), duplicate_of=duplicate_of, distance=distance, max_distance=tau
    )


__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "Deduplication",
    "deduplicate",
    "deduplicate_within",
    "features",
    "hamming",
    "simhash",
    "simhashes",
]
