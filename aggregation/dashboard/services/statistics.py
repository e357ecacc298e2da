"""Campaign agreement statistics (issue 6). Plain numpy, no Django: arrays in, dicts/floats out.

Conventions used throughout:
- Likert scores are 1..5; "normalised" is modeling.protocol.normalise_score, (s - 1) / 4
  (docs/protocol.md section 3).
- maxdiff of an item and score: max - min of its raters' normalised scores. Perfect agreement
  is maxdiff == 0, good agreement maxdiff <= 0.25 (at most one Likert point apart); the paper
  reports about 25% and 85%.
- Krippendorff's alpha is computed from the coincidence matrix (Krippendorff 2011, "Computing
  Krippendorff's alpha-reliability"), interval metric by default; units with fewer than two
  ratings are not pairable and drop out, as in the reference definition.
- Fleiss' kappa needs the same number of raters per unit; callers pass only such units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modeling.metrics import plcc
from modeling.protocol import normalise_score

LIKERT_VALUES = np.arange(1, 6)
PAPER_PERFECT_SHARE = 0.25
PAPER_GOOD_SHARE = 0.85
GOOD_MAXDIFF = 0.25
# Modified z-score threshold (Iglewicz & Hoaglin): robust for the handful of raters a campaign has,
# where the ordinary |z| cannot even exceed (n - 1) / sqrt(n).
OUTLIER_Z = 3.5


# Each Likert step's normalised value, so whole columns are normalised by one lookup.
_NORMALISED = np.array([normalise_score(float(v)) for v in LIKERT_VALUES], dtype=np.float64)


# --------------------------------------------------------------------------- per-item runs


def run_maxdiff(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """max - min of the normalised scores of each run of raw 1..5 scores.

    Run u is scores[starts[u]:starts[u + 1]] (the last runs to the end); runs must not be empty.
    """
    raw = np.asarray(scores, dtype=np.float64)
    if not len(starts):
        return np.zeros(0)
    hi = np.maximum.reduceat(raw, starts).astype(np.int64)
    lo = np.minimum.reduceat(raw, starts).astype(np.int64)
    return _NORMALISED[hi - 1] - _NORMALISED[lo - 1]


def run_means(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Mean of each run (runs as in run_maxdiff)."""
    raw = np.asarray(scores, dtype=np.float64)
    if not len(starts):
        return np.zeros(0)
    return np.add.reduceat(raw, starts) / np.diff(np.r_[starts, len(raw)])


def maxdiff_distribution(maxdiffs: np.ndarray) -> dict:
    """Counts at 0, 0.25, 0.5, 0.75, 1 and the perfect/good shares beside the paper's."""
    md = np.asarray(maxdiffs, dtype=np.float64)
    steps = np.rint(md * 4).astype(int) if md.size else np.zeros(0, dtype=int)
    counts = np.bincount(steps, minlength=5)[:5] if md.size else np.zeros(5, dtype=int)
    n = int(md.size)
    return {
        "bins": [0.0, 0.25, 0.5, 0.75, 1.0],
        "counts": counts.astype(int).tolist(),
        "n": n,
        "perfect_share": float(np.mean(md <= 1e-9)) if n else None,
        "good_share": float(np.mean(md <= GOOD_MAXDIFF + 1e-9)) if n else None,
        "paper_perfect_share": PAPER_PERFECT_SHARE,
        "paper_good_share": PAPER_GOOD_SHARE,
    }


# --------------------------------------------------------------------------- histograms


def raw_histogram(scores: np.ndarray) -> list[int]:
    """Counts of the raw ratings 1..5."""
    s = np.asarray(scores, dtype=int)
    return np.bincount(s, minlength=6)[1:6].astype(int).tolist() if s.size else [0] * 5


def averaged_histogram(means: np.ndarray, n_bins: int = 16) -> dict:
    """Histogram of per-item mean scores over [1, 5] (the paper's score-histogram figure)."""
    edges = np.linspace(1.0, 5.0, n_bins + 1)
    counts, _ = np.histogram(np.asarray(means, dtype=np.float64), bins=edges)
    return {"edges": edges.round(4).tolist(), "counts": counts.astype(int).tolist()}


# --------------------------------------------------------------------------- Krippendorff


def likert_counts(unit: np.ndarray, scores: np.ndarray, n_units: int) -> np.ndarray:
    """(n_units, 5) how many ratings of each Likert value 1..5 each unit got.

    unit[i] is the unit (item number) of rating scores[i]."""
    counts = np.zeros((n_units, len(LIKERT_VALUES)))
    np.add.at(counts, (np.asarray(unit, dtype=np.int64), np.asarray(scores).astype(np.int64) - 1), 1)
    return counts


def _delta2(level: str, values: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if level == "interval":
        return (v[:, None] - v[None, :]) ** 2
    if level == "ordinal":
        cum = np.cumsum(n_c)
        # sum_{g between c and k inclusive} n_g - (n_c + n_k) / 2
        lo = np.minimum.outer(np.arange(len(v)), np.arange(len(v)))
        hi = np.maximum.outer(np.arange(len(v)), np.arange(len(v)))
        between = cum[hi] - np.where(lo > 0, cum[lo - 1], 0.0)
        return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2
    if level == "nominal":
        return 1.0 - np.eye(len(v))
    raise ValueError(f"unknown level {level!r}")


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """Per pairable unit, its contribution to the coincidence matrix: (n_units, c, c)."""
    m = counts.sum(axis=1)
    keep = m >= 2
    c = counts[keep]
    m = m[keep]
    outer = c[:, :, None] * c[:, None, :]
    idx = np.arange(c.shape[1])
    outer[:, idx, idx] -= c
    return outer / (m - 1)[:, None, None]


def _alpha_from_coincidence(o: np.ndarray, level: str, values: np.ndarray) -> float | None:
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return None
    d2 = _delta2(level, values, n_c)
    d_o = float((o * d2).sum())
    d_e = float((np.outer(n_c, n_c) * d2).sum()) / (n - 1)
    if d_e == 0:
        return None  # every rating the same value: alpha undefined
    return 1.0 - d_o / d_e


def _alphas_from_coincidences(o: np.ndarray, level: str, values: np.ndarray) -> np.ndarray:
    """_alpha_from_coincidence of each matrix of a stack (B, c, c), the undefined ones left out.

    The interval and nominal distances do not depend on the counts, so the whole stack is a
    few array operations; the ordinal one does, and goes matrix by matrix."""
    if level == "ordinal":
        alphas = [_alpha_from_coincidence(one, level, values) for one in o]
        return np.array([a for a in alphas if a is not None], dtype=np.float64)
    n_c = o.sum(axis=1)  # (B, c)
    n = n_c.sum(axis=1)
    d2 = _delta2(level, values, n_c[0])
    d_o = (o * d2).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        d_e = (n_c[:, :, None] * n_c[:, None, :] * d2).sum(axis=(1, 2)) / (n - 1)
        alphas = 1.0 - d_o / d_e
    return alphas[(n > 1) & (d_e != 0)]


def krippendorff_alpha(counts: np.ndarray, level: str = "interval", values: np.ndarray = LIKERT_VALUES) -> float | None:
    """Krippendorff's alpha from a (units, values) count matrix."""
    contrib = _unit_coincidences(np.asarray(counts, dtype=np.float64))
    if not len(contrib):
        return None
    return _alpha_from_coincidence(contrib.sum(axis=0), level, values)


@dataclass(frozen=True)
class AlphaEstimate:
    alpha: float | None
    ci_low: float | None
    ci_high: float | None
    n_units: int
    n_boot: int
    level: str

    def as_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n_units": self.n_units,
            "n_boot": self.n_boot,
            "level": self.level,
        }


def krippendorff_alpha_bootstrap(
    counts: np.ndarray,
    *,
    level: str = "interval",
    n_boot: int = 500,
    seed: int = 0,
    confidence: float = 0.95,
    values: np.ndarray = LIKERT_VALUES,
) -> AlphaEstimate:
    """Alpha with a percentile bootstrap CI over units (resampled with replacement).

    Units are grouped by their count pattern first (a 5-point scale with a few raters has at
    most a few hundred patterns), so one resample is a multinomial draw over patterns: the cost
    does not grow with the number of items, and 18,000 items cost the same as 100.
    """
    counts = np.asarray(counts, dtype=np.float64)
    pairable = counts[counts.sum(axis=1) >= 2]
    n_units = int(len(pairable))
    if n_units == 0:
        return AlphaEstimate(None, None, None, 0, 0, level)
    patterns, freq = np.unique(pairable, axis=0, return_counts=True)
    contrib = _unit_coincidences(patterns)  # (P, c, c)
    alpha = _alpha_from_coincidence(np.tensordot(freq, contrib, axes=1), level, values)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_units, freq / n_units, size=n_boot)  # (B, P)
    finite = _alphas_from_coincidences(np.tensordot(weights, contrib, axes=1), level, values)
    if alpha is None or finite.size == 0:
        return AlphaEstimate(alpha, None, None, n_units, n_boot, level)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return AlphaEstimate(alpha, float(low), float(high), n_units, n_boot, level)


# --------------------------------------------------------------------------- Fleiss


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' kappa of a (units, categories) table with the same number of raters per unit."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or len(t) == 0:
        return None
    n = t.sum(axis=1)
    if not np.all(n == n[0]) or n[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters on every unit")
    k = n[0]
    p_j = t.sum(axis=0) / t.sum()
    p_i = ((t * t).sum(axis=1) - k) / (k * (k - 1))
    p_bar = p_i.mean()
    p_e = float((p_j * p_j).sum())
    if p_e == 1.0:
        return None
    return float((p_bar - p_e) / (1 - p_e))


# --------------------------------------------------------------------------- per rater


def modified_z(values: Sequence[float | None], min_mad: float = 0.0) -> list[float | None]:
    """0.6745 (x - median) / max(MAD, min_mad); None where the value is missing or the scale 0.

    min_mad keeps a handful of raters who agree almost perfectly from turning a difference
    nobody would act on (a correlation of 0.84 among 0.86s) into a flag."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    ok = ~np.isnan(arr)
    if ok.sum() < 3:
        return [None] * len(arr)
    med = np.median(arr[ok])
    mad = max(float(np.median(np.abs(arr[ok] - med))), min_mad)
    if mad == 0:
        return [None] * len(arr)
    z = 0.6745 * (arr - med) / mad
    return [None if np.isnan(x) else float(x) for x in z]


@dataclass
class RatingTable:
    """Annotations as parallel arrays (one row per annotation).

    item: item index 0..n_items-1; rater: rater index; scores: (n, n_scores) raw 1..5;
    word_marks: per annotation a bool array over the item's words.
    """

    item: np.ndarray
    rater: np.ndarray
    scores: np.ndarray
    word_marks: list[np.ndarray]
    n_items: int
    n_raters: int

    def item_sums(self) -> tuple[np.ndarray, np.ndarray]:
        sums = np.zeros((self.n_items, self.scores.shape[1]))
        np.add.at(sums, self.item, self.scores)
        n = np.bincount(self.item, minlength=self.n_items).astype(np.float64)
        return sums, n


def rater_bias_and_consensus(table: RatingTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per rater: bias (n_raters, n_scores) = mean of own score - mean of the OTHER raters on the
    same item; correlation of own scores with that leave-one-out consensus (pooled over scores);
    and how many annotations entered (items with at least one other rater)."""
    sums, n = table.item_sums()
    n_other = n[table.item] - 1
    ok = n_other >= 1
    loo = np.full(table.scores.shape, np.nan)
    loo[ok] = (sums[table.item[ok]] - table.scores[ok]) / n_other[ok, None]
    dev = table.scores - loo
    n_s = table.scores.shape[1]
    bias = np.full((table.n_raters, n_s), np.nan)
    corr = np.full(table.n_raters, np.nan)
    used = np.zeros(table.n_raters, dtype=int)
    for r in range(table.n_raters):
        rows = ok & (table.rater == r)
        used[r] = int(rows.sum())
        if not rows.any():
            continue
        bias[r] = dev[rows].mean(axis=0)
        c = plcc(table.scores[rows].ravel(), loo[rows].ravel())
        corr[r] = np.nan if c is None else c
    return bias, corr, used


@dataclass(frozen=True)
class _WordVotes:
    """Every answer's word marks laid end to end, with each item's votes per word.

    All answers of one item mark the same words (the item's prompt)."""

    flat: np.ndarray  # (total marks,) bool, answer after answer
    answer_of: np.ndarray  # (total marks,) the answer each mark belongs to
    item_of: np.ndarray  # (total marks,) its item
    slot: np.ndarray  # (total marks,) its (item, word) index into votes
    votes: np.ndarray  # (sum over items of their words,) how many raters marked the word
    item_word_first: np.ndarray  # (n_items,) each item's first index into votes
    item_n_words: np.ndarray  # (n_items,)


def _word_votes(table: RatingTable) -> _WordVotes:
    lengths = np.array([len(m) for m in table.word_marks], dtype=np.int64)
    flat = np.concatenate(table.word_marks).astype(bool) if len(table.word_marks) else np.zeros(0, dtype=bool)
    answer_of = np.repeat(np.arange(len(lengths)), lengths)
    item_of = table.item[answer_of]
    item_n_words = np.zeros(table.n_items, dtype=np.int64)
    item_n_words[table.item] = lengths
    item_word_first = np.cumsum(item_n_words) - item_n_words
    position = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    slot = item_word_first[item_of] + position
    votes = np.bincount(slot, weights=flat, minlength=int(item_n_words.sum())).astype(np.int64)
    return _WordVotes(flat, answer_of, item_of, slot, votes, item_word_first, item_n_words)


def word_majority_disagreement(table: RatingTable) -> tuple[np.ndarray, np.ndarray]:
    """Per rater: items where their set of marked words differs from the item's majority
    (marked by more than half of the item's raters, all raters counted), and items counted
    (those with at least 3 raters, where a majority is more than one other rater's opinion)."""
    wv = _word_votes(table)
    _, n = table.item_sums()
    majority = wv.votes[wv.slot] * 2 > n[wv.item_of]
    differs = np.bincount(wv.answer_of, weights=majority != wv.flat, minlength=len(table.item)) > 0
    counted_rows = n[table.item] >= 3
    disagree = np.bincount(table.rater[counted_rows & differs], minlength=table.n_raters).astype(int)
    counted = np.bincount(table.rater[counted_rows], minlength=table.n_raters).astype(int)
    return disagree, counted


def word_unanimity(table: RatingTable) -> np.ndarray:
    """Per item, the share of its words that all its raters marked or none did (1 for no words)."""
    wv = _word_votes(table)
    _, n = table.item_sums()
    item_of_slot = np.repeat(np.arange(table.n_items), wv.item_n_words)
    unanimous = (wv.votes == 0) | (wv.votes == n[item_of_slot])
    agreed = np.bincount(item_of_slot, weights=unanimous, minlength=table.n_items)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(wv.item_n_words > 0, agreed / wv.item_n_words, 1.0)


def words_fleiss_units(table: RatingTable) -> tuple[np.ndarray, int, np.ndarray]:
    """(units, 2) table of [not marked, marked] per prompt word, over the items rated by the most
    common number of raters (Fleiss needs it constant); that number; and per unit (word) the
    index of its item among the items used, so a bootstrap can resample whole items (words of
    one prompt are not independent)."""
    _, n = table.item_sums()
    rated = n[n >= 2]
    if rated.size == 0:
        return np.zeros((0, 2)), 0, np.zeros(0, dtype=np.int64)
    values, freq = np.unique(rated, return_counts=True)
    k = int(values[np.argmax(freq)])
    # Items in the order of their first answer, as the groups are numbered.
    first_answer = np.unique(table.item, return_index=True)[1]
    order = table.item[np.sort(first_answer)]
    used = order[n[order] == k]
    wv = _word_votes(table)
    if not len(used):
        return np.zeros((0, 2)), k, np.zeros(0, dtype=np.int64)
    lengths = wv.item_n_words[used]
    slots = np.repeat(wv.item_word_first[used], lengths) + (
        np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    yes = wv.votes[slots].astype(np.float64)
    groups = np.repeat(np.arange(len(used), dtype=np.int64), lengths)
    return np.stack([k - yes, yes], axis=1), k, groups


def fleiss_kappa_bootstrap(
    table: np.ndarray, groups: np.ndarray, *, n_boot: int = 500, seed: int = 0, confidence: float = 0.95
) -> tuple[float | None, float | None, float | None]:
    """Fleiss' kappa with a percentile bootstrap CI resampling whole groups (items).

    Kappa only needs, per group, the category totals, the sum of the per-unit agreements P_u and
    the unit count, so a resample is a weight vector over groups: (B, G) matrix products, chunked
    to bound memory."""
    t = np.asarray(table, dtype=np.float64)
    kappa = fleiss_kappa(t) if len(t) else None
    if kappa is None:
        return None, None, None
    k = t[0].sum()
    n_groups = int(groups.max()) + 1
    p_u = ((t * t).sum(axis=1) - k) / (k * (k - 1))
    cat = np.stack([np.bincount(groups, weights=t[:, j], minlength=n_groups) for j in range(t.shape[1])], axis=1)
    p_sum = np.bincount(groups, weights=p_u, minlength=n_groups)
    units = np.bincount(groups, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    boots: list[np.ndarray] = []
    for lo in range(0, n_boot, 50):
        w = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=min(50, n_boot - lo)).astype(np.float64)
        n_units = w @ units
        p_j = (w @ cat) / (n_units * k)[:, None]
        p_e = (p_j * p_j).sum(axis=1)
        p_bar = (w @ p_sum) / n_units
        with np.errstate(divide="ignore", invalid="ignore"):
            boots.append((p_bar - p_e) / (1 - p_e))
    values = np.concatenate(boots)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return kappa, None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return kappa, float(low), float(high)
