"""Metrics against hand-computed fixtures and the invariants in spec metrics.md."""

import math

import numpy as np
import pytest

from modeling.metrics import (
    MIT_EPS,
    evaluate_heatmaps,
    evaluate_keywords,
    heatmap_auc_judd,
    heatmap_cc,
    heatmap_kld,
    heatmap_mse,
    heatmap_nss,
    heatmap_sim,
    keyword_counts,
    plcc,
    srcc,
)


def _blob(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = np.zeros((16, 16))
    g[4:9, 5:11] = rng.random((5, 6)) * 0.5 + 0.5
    return g


def test_plcc_srcc_hand_computed() -> None:
    # x = [1,2,3,4], y = [1,3,2,4]: cov = 4/4... r = 0.8 by hand (sum xc*yc = 4, sxx = syy = 5).
    assert plcc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # Monotone but non-linear: Spearman 1, Pearson below 1.
    assert srcc([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(1.0)
    assert plcc([1, 2, 3, 4], [1, 4, 9, 100]) < 0.99
    # Ties get average ranks: ranks x=[1.5,1.5,3], y=[1,2,3] -> r = 0.8660...
    assert srcc([0, 0, 1], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)


def test_scores_undefined_not_zero() -> None:
    assert plcc([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]) is None
    assert srcc([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]) is None
    assert plcc([1.0], [2.0]) is None


def test_identical_maps() -> None:
    g = _blob()
    assert heatmap_cc(g, g) == pytest.approx(1.0)
    assert heatmap_sim(g, g) == pytest.approx(1.0)
    assert heatmap_kld(g, g) == pytest.approx(0.0, abs=1e-9)
    assert heatmap_mse(g, g) == 0.0


def test_auc_judd_invariants() -> None:
    g = _blob()
    mask = (g > 0).astype(float)
    assert heatmap_auc_judd(mask, g) == pytest.approx(1.0)
    assert heatmap_auc_judd(1.0 - mask, g) < 0.02
    assert heatmap_auc_judd(np.full_like(g, 0.3), g) == pytest.approx(0.5, abs=0.1)
    assert math.isnan(heatmap_auc_judd(g, np.zeros_like(g)))


def test_auc_judd_hand_computed() -> None:
    # 4 pixels, fixations at the pixels with P = 0.9 and 0.2; others 0.5 and 0.1.
    p = np.array([[0.9, 0.5], [0.2, 0.1]])
    g = np.array([[1.0, 0.0], [1.0, 0.0]])
    # thresholds 0.9 then 0.2: (tp,fp) = (0.5, 0), (1, 0.5) -> plus (0,0), (1,1):
    # area = 0 + 0.5*(0.5+1)*0.5 + 0.5*1 = 0.875
    assert heatmap_auc_judd(p, g) == pytest.approx(0.875, abs=1e-6)


def test_nss_single_fixation_is_z_score() -> None:
    rng = np.random.default_rng(3)
    p = rng.random((8, 8))
    g = np.zeros((8, 8))
    g[2, 5] = 1.0
    assert heatmap_nss(p, g) == pytest.approx((p[2, 5] - p.mean()) / p.std())


def test_kld_and_sim_hand_computed() -> None:
    p = np.array([[1.0, 1.0], [0.0, 0.0]])
    g = np.array([[1.0, 0.0], [1.0, 0.0]])
    # G' = [.5,0,.5,0], P' = [.5,.5,0,0]:
    # KLD = .5*log(eps + 1) + .5*log(eps + .5/eps)
    expected = 0.5 * math.log(MIT_EPS + 1.0) + 0.5 * math.log(MIT_EPS + 0.5 / MIT_EPS)
    assert heatmap_kld(p, g) == pytest.approx(expected)
    assert heatmap_kld(p, g, eps=1e-8) < heatmap_kld(p, g)  # eps changes the value a lot
    # SIM: both already min-max normalised; P'=[.5,.5,0,0], G'=[.5,0,.5,0] -> 0.5
    assert heatmap_sim(p, g) == pytest.approx(0.5)
    # CC of these: hand-computed 0 (orthogonal after centring).
    assert heatmap_cc(p, g) == pytest.approx(0.0)


def test_evaluate_heatmaps_split_by_gt() -> None:
    g_pos = _blob(1)
    g_zero = np.zeros_like(g_pos)
    preds = [g_pos, np.full_like(g_pos, 0.1)]
    report = evaluate_heatmaps(preds, [g_pos, g_zero])
    assert report.n_images == 2 and report.n_gt0 == 1 and report.n_gtpos == 1
    assert report.mse_gt0 == pytest.approx(0.01)
    assert report.mse_all == pytest.approx(0.005)
    assert report.cc == pytest.approx(1.0)
    assert report.auc_judd == pytest.approx(1.0, abs=1e-6)
    # An all-zero prediction: CC and NSS undefined (None), not 0.
    zero = evaluate_heatmaps([np.zeros_like(g_pos)], [g_pos])
    assert zero.cc is None and zero.nss is None
    assert zero.auc_judd == pytest.approx(0.5, abs=0.1)


def test_keyword_counts_positional() -> None:
    assert keyword_counts("a yellow_0 cat", "a yellow_0 cat") == (1, 0, 0)
    assert keyword_counts("a yellow cat_0", "a yellow_0 cat") == (0, 1, 1)
    # Shorter generation: the missing positive word counts as a false negative.
    assert keyword_counts("a", "a yellow_0 cat_0") == (0, 0, 2)
    # Extra generated "_0" words past the target are false positives.
    assert keyword_counts("a cat dog_0", "a cat") == (0, 1, 0)
    # "_0" on a different stem at the right position is not a hit.
    assert keyword_counts("a blue_0 cat", "a yellow_0 cat") == (0, 1, 1)


def test_evaluate_keywords_pooled_and_per_prompt() -> None:
    gen = ["a yellow_0 cat", "a dog", "two_0 red_0 cars"]
    tgt = ["a yellow_0 cat", "a dog", "two red_0 cars_0"]
    m = evaluate_keywords(gen, tgt)
    assert (m.tp, m.fp, m.fn) == (2, 1, 1)
    assert m.pooled.precision == pytest.approx(2 / 3)
    assert m.pooled.recall == pytest.approx(2 / 3)
    assert m.pooled.f1 == pytest.approx(2 / 3)
    # Per prompt: (1,1,1), clean prompt (1,1,1), (0.5, 0.5, 0.5) -> averages 5/6.
    assert m.per_prompt.precision == pytest.approx(5 / 6)
    assert m.per_prompt.f1 == pytest.approx(5 / 6)
    none = evaluate_keywords(["a dog", "a cat"], ["a dog", "a cat_0"])
    assert none.pooled.precision is None and none.pooled.recall == 0.0
