"""The dashboard's statistics against hand-computed fixtures and independent implementations
(krippendorff for alpha, statsmodels for Fleiss' kappa) on random data."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from aggregation.dashboard.services import statistics as st

# --------------------------------------------------------------------------- hand-computed


def _counts(units: list[list[int]]) -> np.ndarray:
    """likert_counts of one list of raw ratings per unit."""
    unit = [u for u, ratings in enumerate(units) for _ in ratings]
    return st.likert_counts(np.array(unit, dtype=np.int64), np.array([r for rs in units for r in rs]), len(units))


def test_maxdiff_and_means_of_runs_hand_computed():
    # Runs [1, 2, 2], [3, 3, 3], [1, 5, 3], [2, 4, 3]: normalised spreads 1/4, 0, 4/4, 2/4.
    scores = np.array([1, 2, 2, 3, 3, 3, 1, 5, 3, 2, 4, 3], dtype=float)
    starts = np.array([0, 3, 6, 9])
    md = st.run_maxdiff(scores, starts)
    assert md.tolist() == [0.25, 0.0, 1.0, 0.5]
    assert st.run_means(scores, starts).tolist() == pytest.approx([5 / 3, 3.0, 3.0, 3.0])
    assert st.run_maxdiff(np.zeros(0), np.zeros(0, dtype=int)).size == 0
    dist = st.maxdiff_distribution(md)
    assert dist["counts"] == [1, 1, 1, 0, 1]
    assert dist["perfect_share"] == pytest.approx(0.25)
    assert dist["good_share"] == pytest.approx(0.5)
    assert (dist["paper_perfect_share"], dist["paper_good_share"]) == (0.25, 0.85)


def test_histograms_hand_computed():
    assert st.raw_histogram(np.array([1, 1, 3, 5, 5, 5])) == [2, 0, 1, 0, 3]
    hist = st.averaged_histogram(np.array([1.0, 1.2, 3.0, 5.0]), n_bins=4)
    assert hist["edges"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert hist["counts"] == [2, 0, 1, 1]  # 5.0 falls in the last, closed bin


def test_alpha_interval_hand_computed():
    # Units (1, 1) and (2, 3). Coincidences: o11 = 2, o23 = o32 = 1; n1 = 2, n2 = n3 = 1, n = 4.
    # D_o = (1 + 1) / 4 = 0.5; D_e = (2*2*1*1 + 2*2*1*4 + 2*1*1*1) / (4 * 3) = 22/12.
    counts = _counts([[1, 1], [2, 3]])
    assert counts.tolist() == [[2, 0, 0, 0, 0], [0, 1, 1, 0, 0]]
    assert st.krippendorff_alpha(counts, "interval") == pytest.approx(1 - 0.5 / (22 / 12))


def test_alpha_ignores_single_rating_units_and_undefined_when_constant():
    with_single = _counts([[1, 1], [2, 3], [5]])
    without = _counts([[1, 1], [2, 3]])
    assert st.krippendorff_alpha(with_single) == pytest.approx(st.krippendorff_alpha(without))
    assert st.krippendorff_alpha(_counts([[4, 4], [4, 4, 4]])) is None


def test_fleiss_hand_computed():
    # P1 = (9 - 3) / 6 = 1, P2 = (1 + 4 - 3) / 6 = 1/3, Pbar = 2/3; p = (4/6, 2/6), Pe = 5/9.
    assert st.fleiss_kappa(np.array([[3, 0], [1, 2]])) == pytest.approx((2 / 3 - 5 / 9) / (1 - 5 / 9))
    with pytest.raises(ValueError):
        st.fleiss_kappa(np.array([[3, 0], [1, 1]]))


def _table(item, rater, scores, marks=None, n_words=3):
    item = np.array(item)
    scores = np.array(scores, dtype=float).reshape(len(item), -1)
    if marks is None:
        marks = [[] for _ in item]
    word_marks = []
    for m in marks:
        v = np.zeros(n_words, dtype=bool)
        v[list(m)] = True
        word_marks.append(v)
    return st.RatingTable(
        item=item,
        rater=np.array(rater),
        scores=scores,
        word_marks=word_marks,
        n_items=int(item.max()) + 1,
        n_raters=int(max(rater)) + 1,
    )


def test_bias_and_consensus_hand_computed():
    # Item 0: A=5, B=3, C=3; item 1: A=4, B=2, C=2. A sits 2 above the others' mean on both;
    # B is 1 below ((3 - (5+3)/2), (2 - (4+2)/2)); A's own scores track the others' mean exactly.
    t = _table([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], [5, 3, 3, 4, 2, 2])
    bias, corr, used = st.rater_bias_and_consensus(t)
    assert bias[:, 0].tolist() == pytest.approx([2.0, -1.0, -1.0])
    assert corr[0] == pytest.approx(1.0)
    assert used.tolist() == [2, 2, 2]


def test_consensus_is_undefined_for_a_rater_whose_scores_never_vary():
    # A gives 3 on every item and score while the others move (4.5, then 1.5): A's bias is
    # defined (-1.5 and +1.5 average to 0), a correlation with a constant is not.
    t = _table([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], [[3] * 4, [5] * 4, [4] * 4, [3] * 4, [1] * 4, [2] * 4])
    bias, corr, _ = st.rater_bias_and_consensus(t)
    assert np.isnan(corr[0]) and bias[0].tolist() == pytest.approx([0.0] * 4)
    assert corr[1] == pytest.approx(1.0)


def test_bias_skips_items_with_a_single_rater():
    t = _table([0, 0, 1], [0, 1, 0], [5, 3, 1])
    bias, _, used = st.rater_bias_and_consensus(t)
    assert bias[0, 0] == pytest.approx(2.0) and used.tolist() == [1, 1]


def test_word_majority_disagreement_hand_computed():
    # Item 0: A and B mark word 0, C marks nothing: majority {0}, C disagrees.
    # Item 1: only two raters, so it does not count.
    t = _table([0, 0, 0, 1, 1], [0, 1, 2, 0, 2], [3] * 5, marks=[[0], [0], [], [1], []])
    disagree, counted = st.word_majority_disagreement(t)
    assert disagree.tolist() == [0, 0, 1]
    assert counted.tolist() == [1, 1, 1]


def test_words_fleiss_units_use_the_modal_rater_count():
    t = _table([0, 0, 0, 1, 1, 1, 2, 2], [0, 1, 2, 0, 1, 2, 0, 1], [3] * 8, marks=[[0], [0], [], [], [], [2], [0], [0]])
    table, k, groups = st.words_fleiss_units(t)
    assert k == 3
    # item 0 words: [2 marked, 0, 0]; item 1: [0, 0, 1]; item 2 (two raters) left out.
    assert table.tolist() == [[1, 2], [3, 0], [3, 0], [3, 0], [3, 0], [2, 1]]
    assert groups.tolist() == [0, 0, 0, 1, 1, 1]


def test_modified_z_marks_the_far_rater():
    z = st.modified_z([0.0, 0.1, -0.1, 0.05, 1.5])
    assert abs(z[-1]) > st.OUTLIER_Z
    assert all(abs(x) < st.OUTLIER_Z for x in z[:-1])
    assert st.modified_z([1.0, None]) == [None, None]


# --------------------------------------------------------------------------- independent implementations


def _random_ratings(rng, n_units, n_raters, missing=0.3):
    truth = rng.integers(1, 6, size=n_units)
    data = np.clip(truth[None, :] + rng.integers(-1, 2, size=(n_raters, n_units)), 1, 5).astype(float)
    data[rng.random(data.shape) < missing] = np.nan
    return data


@pytest.mark.parametrize("level", ["interval", "ordinal", "nominal"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_matches_krippendorff_package(level, seed):
    rng = np.random.default_rng(seed)
    data = _random_ratings(rng, n_units=200, n_raters=5)
    units = [[int(v) for v in col if not np.isnan(v)] for col in data.T]
    ours = st.krippendorff_alpha(_counts(units), level)
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=[1, 2, 3, 4, 5])
    assert ours == pytest.approx(theirs, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fleiss_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 6))
    p = rng.uniform(0.05, 0.6, size=400)
    marked = rng.binomial(k, p)
    table = np.stack([k - marked, marked], axis=1)
    assert st.fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), abs=1e-12)


def test_bootstrap_is_seeded_bounded_and_shrinks_with_data():
    rng = np.random.default_rng(5)
    small = [[int(v) for v in col if not np.isnan(v)] for col in _random_ratings(rng, 100, 3, missing=0).T]
    big = [[int(v) for v in col if not np.isnan(v)] for col in _random_ratings(rng, 1600, 3, missing=0).T]
    a = st.krippendorff_alpha_bootstrap(_counts(small), n_boot=300, seed=7)
    b = st.krippendorff_alpha_bootstrap(_counts(small), n_boot=300, seed=7)
    assert a == b
    assert a.ci_low < a.alpha < a.ci_high
    assert a.alpha == pytest.approx(st.krippendorff_alpha(_counts(small)))
    c = st.krippendorff_alpha_bootstrap(_counts(big), n_boot=300, seed=7)
    # Width scales like 1/sqrt(n): 16x the items, about a quarter of the width.
    assert (c.ci_high - c.ci_low) < 0.5 * (a.ci_high - a.ci_low)


def test_bootstrap_pattern_resampling_matches_unit_resampling():
    """One resample by patterns equals the same resample made unit by unit."""
    rng = np.random.default_rng(11)
    units = [[int(v) for v in col if not np.isnan(v)] for col in _random_ratings(rng, 60, 3, missing=0).T]
    counts = _counts(units)
    picks = rng.integers(0, len(units), size=len(units))
    direct = st.krippendorff_alpha(counts[picks])
    theirs = krippendorff.alpha(
        value_counts=counts[picks], level_of_measurement="interval", value_domain=[1, 2, 3, 4, 5]
    )
    assert direct == pytest.approx(theirs, abs=1e-9)
    # Spread over 500 resamples comparable to a plain unit bootstrap's (same estimand).
    est = st.krippendorff_alpha_bootstrap(counts, n_boot=500, seed=3)
    plain = [st.krippendorff_alpha(counts[rng.integers(0, len(units), size=len(units))]) for _ in range(500)]
    lo, hi = np.percentile(plain, [2.5, 97.5])
    assert est.ci_low == pytest.approx(lo, abs=0.05) and est.ci_high == pytest.approx(hi, abs=0.05)


def test_modified_z_min_mad_keeps_tiny_differences_unflagged():
    corr = [0.87, 0.88, 0.87, 0.86, 0.80]
    assert abs(st.modified_z(corr)[-1]) > st.OUTLIER_Z  # MAD 0.01: a 0.07 gap looks huge
    assert abs(st.modified_z(corr, min_mad=0.05)[-1]) < st.OUTLIER_Z


def test_fleiss_bootstrap_resample_matches_statsmodels_on_the_resampled_table():
    rng = np.random.default_rng(4)
    k = 3
    sizes = rng.integers(3, 9, size=80)  # words per prompt
    groups = np.repeat(np.arange(len(sizes)), sizes)
    marked = rng.binomial(k, rng.uniform(0.05, 0.5, size=len(groups)))
    table = np.stack([k - marked, marked], axis=1)
    kappa, low, high = st.fleiss_kappa_bootstrap(table, groups, n_boot=400, seed=9)
    assert kappa == pytest.approx(sm_fleiss_kappa(table, method="fleiss"))
    assert low < kappa < high
    assert st.fleiss_kappa_bootstrap(table, groups, n_boot=400, seed=9) == (kappa, low, high)
    # Same spread as a plain bootstrap that resamples prompts and asks statsmodels each time.
    by_group = [table[groups == g] for g in range(len(sizes))]
    plain = [
        sm_fleiss_kappa(np.concatenate([by_group[g] for g in rng.integers(0, len(sizes), size=len(sizes))]))
        for _ in range(400)
    ]
    lo, hi = np.percentile(plain, [2.5, 97.5])
    assert low == pytest.approx(lo, abs=0.04) and high == pytest.approx(hi, abs=0.04)


def _random_word_table(seed: int) -> st.RatingTable:
    """Items of 0..4 words and 1..4 raters, answers in shuffled order (not item by item)."""
    rng = np.random.default_rng(seed)
    n_items, n_raters = 40, 6
    n_words = rng.integers(0, 5, size=n_items)
    item, rater, marks = [], [], []
    for it in range(n_items):
        for r in rng.choice(n_raters, size=int(rng.integers(1, 5)), replace=False):
            item.append(it)
            rater.append(int(r))
            marks.append(rng.random(int(n_words[it])) < 0.4)
    order = rng.permutation(len(item))
    return st.RatingTable(
        item=np.array(item)[order],
        rater=np.array(rater)[order],
        scores=np.full((len(item), 1), 3.0),
        word_marks=[marks[i] for i in order],
        n_items=n_items,
        n_raters=n_raters,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_word_figures_match_a_rater_by_rater_count(seed):
    """The array versions against the definitions written out answer by answer."""
    t = _random_word_table(seed)
    answers: dict[int, list[int]] = {}
    for i, it in enumerate(t.item.tolist()):
        answers.setdefault(it, []).append(i)
    votes = {it: sum(t.word_marks[i].astype(int) for i in rows) for it, rows in answers.items()}
    disagree, counted = np.zeros(t.n_raters, dtype=int), np.zeros(t.n_raters, dtype=int)
    for i, (it, r) in enumerate(zip(t.item.tolist(), t.rater.tolist(), strict=True)):
        if len(answers[it]) >= 3:
            counted[r] += 1
            disagree[r] += int(not np.array_equal(votes[it] * 2 > len(answers[it]), t.word_marks[i]))
    assert [x.tolist() for x in st.word_majority_disagreement(t)] == [disagree.tolist(), counted.tolist()]
    unanimity = [
        float(np.mean((votes[it] == 0) | (votes[it] == len(answers[it])))) if len(votes[it]) else 1.0
        for it in range(t.n_items)
    ]
    assert st.word_unanimity(t).tolist() == pytest.approx(unanimity, abs=1e-12)
    sizes = [len(a) for a in answers.values() if len(a) >= 2]
    k = min(sizes, key=lambda v: (-sizes.count(v), v))  # the most common; ties to the smallest
    used = [it for it in answers if len(answers[it]) == k]  # in order of first answer
    table, k_got, groups = st.words_fleiss_units(t)
    assert k_got == k
    assert table[:, 1].tolist() == [float(v) for it in used for v in votes[it]]
    assert groups.tolist() == [g for g, it in enumerate(used) for _ in votes[it]]


def test_alpha_bootstrap_resamples_equal_one_by_one_alphas():
    """The stacked computation gives bit for bit the alpha of each resample on its own."""
    rng = np.random.default_rng(4)
    counts = _counts([[int(v) for v in col if not np.isnan(v)] for col in _random_ratings(rng, 300, 3).T])
    patterns, freq = np.unique(counts[counts.sum(axis=1) >= 2], axis=0, return_counts=True)
    contrib = st._unit_coincidences(patterns)
    weights = np.random.default_rng(9).multinomial(int(freq.sum()), freq / freq.sum(), size=200)
    one_by_one = [
        st._alpha_from_coincidence(np.tensordot(w, contrib, axes=1), "interval", st.LIKERT_VALUES) for w in weights
    ]
    stacked = st._alphas_from_coincidences(np.tensordot(weights, contrib, axes=1), "interval", st.LIKERT_VALUES)
    assert stacked.tolist() == one_by_one
