"""Metrics against hand-computed fixtures and the invariants in spec metrics.md."""

import math

import numpy as np
import pytest

from modeling.metrics import (
    MIT_EPS,
    EvaluationReport,
    evaluate_heatmaps,
    evaluate_keywords,
    evaluate_scores,
    format_report,
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


def test_constant_input_of_955_values_is_undefined_despite_rounding() -> None:
    constant = [0.3] * 955
    other = np.random.default_rng(0).random(955)
    # The trap: the centred constant is not exactly zero in floating point, so an exact
    # zero-variance test let a "correlation" of rounding noise through (-7.5e-17).
    assert np.asarray(constant).std() > 0
    assert plcc(constant, other) is None
    assert plcc(other, constant) is None
    assert srcc(constant, other) is None
    report = evaluate_scores(constant, other)
    assert report.plcc is None and report.srcc is None
    assert report.undefined == "constant prediction"
    assert evaluate_scores(other, constant).undefined == "constant ground truth"
    # The tolerance is relative to the data's scale: a tiny but real signal keeps its value.
    assert plcc(other * 1e-9, other[::-1]) == pytest.approx(plcc(other, other[::-1]))


def test_constant_map_nss_and_cc_undefined() -> None:
    g = _blob()
    for value in (0.1, 0.3, 0.7):
        constant = np.full((64, 64), value)
        assert constant.std() > 0  # rounding again: exactly constant, not exactly zero std
        big_g = np.zeros((64, 64))
        big_g[10:20, 30:40] = 1.0
        assert math.isnan(heatmap_nss(constant, big_g))  # was +-1
        assert math.isnan(heatmap_cc(constant, big_g))
    # A constant ground truth (every pixel marked alike) leaves CC undefined too.
    assert math.isnan(heatmap_cc(g, np.ones_like(g)))
    # MIT similarity.m: min-max of a constant non-zero map is 0/0, so SIM is undefined.
    assert math.isnan(heatmap_sim(np.full_like(g, 0.3), g))


def test_all_zero_prediction() -> None:
    g = _blob(2)
    zero = np.zeros_like(g)
    # MIT similarity.m keeps a zero map at zero: nothing predicted, nothing in common.
    assert heatmap_sim(zero, g) == 0.0
    assert math.isnan(heatmap_cc(zero, g)) and math.isnan(heatmap_nss(zero, g))
    # MIT KLdiv.m keeps the zero map at zero too: KLD = sum G' log(eps + G' / eps).
    gn = g / g.sum()
    expected = float(sum(v * math.log(MIT_EPS + v / MIT_EPS) for v in gn.ravel() if v > 0))
    assert heatmap_kld(zero, g) == pytest.approx(expected)
    assert heatmap_auc_judd(zero, g) == pytest.approx(0.5, abs=0.1)  # the noise breaks the ties


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
    # MIT NSS.m divides by MATLAB's std, the N - 1 one.
    assert heatmap_nss(p, g) == pytest.approx((p[2, 5] - p.mean()) / p.std(ddof=1))


def test_nss_uses_n_minus_1_standard_deviation() -> None:
    # P = [0 1; 2 3], one fixation on the 3: mean 1.5, squared deviations 2.25+0.25+0.25+2.25
    # = 5, so the N-1 std is sqrt(5/3) and NSS = 1.5 / sqrt(5/3) = 1.1619 (the population std
    # sqrt(5/4) would give 1.3416).
    p = np.array([[0.0, 1.0], [2.0, 3.0]])
    g = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert heatmap_nss(p, g) == pytest.approx(1.5 / math.sqrt(5 / 3))
    assert heatmap_nss(p, g) != pytest.approx(1.5 / math.sqrt(5 / 4))


def test_mit_eps_is_matlab_eps() -> None:
    assert MIT_EPS == 2.0**-52 == np.finfo(float).eps


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
    # An all-zero prediction: CC and NSS undefined (None), not 0; SIM 0 as in MIT's code.
    zero = evaluate_heatmaps([np.zeros_like(g_pos)], [g_pos])
    assert zero.cc is None and zero.nss is None
    assert zero.sim == 0.0
    assert zero.auc_judd == pytest.approx(0.5, abs=0.1)
    assert zero.left_out["cc"] == {"constant prediction": 1}


def test_undefined_per_image_values_are_counted_not_dropped() -> None:
    g1, g2, g3 = _blob(1), _blob(2), _blob(3)
    good = g1 * 0.5 + 0.1 * _blob(4)
    preds = [good, np.zeros_like(g2), np.full_like(g3, 0.3), np.full_like(g1, 0.2)]
    truths = [g1, g2, g3, np.zeros_like(g1)]
    report = evaluate_heatmaps(preds, truths)
    assert (report.n_images, report.n_gt0, report.n_gtpos) == (4, 1, 3)
    # CC and NSS are defined only for the first image: that is their whole average.
    assert report.cc == pytest.approx(heatmap_cc(good, g1))
    assert report.nss == pytest.approx(heatmap_nss(good, g1))
    assert report.left_out["cc"] == {"constant prediction": 2}
    assert report.left_out["nss"] == {"constant prediction": 2}
    # SIM: the all-zero map counts as 0, only the constant 0.3 map is left out.
    assert report.sim == pytest.approx((heatmap_sim(good, g1) + 0.0) / 2)
    assert report.left_out["sim"] == {"constant prediction": 1}
    assert report.left_out["kld"] == {} and report.left_out["auc_judd"] == {}
    assert report.n_left_out("cc") == 2
    # A non-finite prediction is left out of every average, with its reason.
    broken = good.copy()
    broken[0, 0] = np.nan
    nan_report = evaluate_heatmaps([broken, good], [g1, g1])
    assert nan_report.left_out["mse_all"] == {"non-finite values": 1}
    assert nan_report.cc == pytest.approx(heatmap_cc(good, g1))
    # The table says how many images each average left out, and why.
    text = format_report({"model": EvaluationReport(heatmaps={"implausibility": report})})
    assert "CC 2 (constant prediction); SIM 1 (constant prediction); NSS 2 (constant prediction)" in text
    assert [line.split()[-1] for line in text.splitlines() if "images left out" in line] == ["2", "1", "2"]
    clean = evaluate_heatmaps([good], [g1])
    clean_text = format_report({"model": EvaluationReport(heatmaps={"implausibility": clean})})
    assert "Left out of the averages: none" in clean_text and "images left out" not in clean_text


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
