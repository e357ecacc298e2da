"""The paper's evaluation metrics (spec metrics.md).

Saliency metrics follow the MIT saliency benchmark code (cvzoya/saliency) with the deviations
the spec asks for; every "undefined" case returns ``nan`` per image / ``None`` in aggregates
rather than 0, because a silent 0 would be read as a (terrible) measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import rankdata

from modeling.text import parse_tagged

#: eps of the MIT code (MATLAB's eps); the RichHF reimplementation uses 1e-8.
MIT_EPS = 2.2204e-16
RICHHF_EPS = 1e-8


# --------------------------------------------------------------------------- scores


def plcc(pred: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray) -> float | None:
    """Pearson correlation; ``None`` when undefined (fewer than 2 values or a constant side)."""
    x = np.asarray(pred, dtype=np.float64).ravel()
    y = np.asarray(true, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {x.shape} vs {y.shape}")
    if x.size < 2:
        return None
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((xc * xc).sum()) * float((yc * yc).sum()))
    if denom == 0.0 or not math.isfinite(denom):
        return None
    return float(np.clip((xc * yc).sum() / denom, -1.0, 1.0))


def srcc(pred: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); ``None`` when undefined."""
    x = np.asarray(pred, dtype=np.float64).ravel()
    y = np.asarray(true, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {x.shape} vs {y.shape}")
    if x.size < 2:
        return None
    return plcc(rankdata(x), rankdata(y))


# --------------------------------------------------------------------------- heatmaps


def _pair(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"heatmap shapes differ: {p.shape} vs {g.shape}")
    return p, g


def heatmap_mse(p: np.ndarray, g: np.ndarray) -> float:
    """Mean over pixels of (P - G)^2."""
    p, g = _pair(p, g)
    return float(((p - g) ** 2).mean())


def heatmap_cc(p: np.ndarray, g: np.ndarray) -> float:
    """Pearson correlation over pixels; ``nan`` when either map is constant."""
    p, g = _pair(p, g)
    value = plcc(p, g)
    return math.nan if value is None else value


def _distribution(m: np.ndarray) -> np.ndarray:
    total = m.sum()
    # An all-zero map has no mass to spread; it stays zero (KLD then penalises it fully).
    return m / total if total > 0 else np.zeros_like(m)


def heatmap_kld(p: np.ndarray, g: np.ndarray, eps: float = MIT_EPS) -> float:
    """KL divergence of the normalised P from the normalised G.

    ``KLD = sum G' log(eps + G' / (P' + eps))``. ``eps`` matters a lot when P has exact zeros
    (MIT: 2.2204e-16, RichHF reimplementation: 1e-8); reports must say which one was used.
    """
    p, g = _pair(p, g)
    pn, gn = _distribution(p), _distribution(g)
    return float((gn * np.log(eps + gn / (pn + eps))).sum())


def _minmax_distribution(m: np.ndarray) -> np.ndarray:
    lo, hi = m.min(), m.max()
    # A constant map expresses no preference: treat it as uniform (MIT code would give NaN).
    m = np.ones_like(m) if hi == lo else (m - lo) / (hi - lo)
    return m / m.sum()


def heatmap_sim(p: np.ndarray, g: np.ndarray) -> float:
    """Histogram intersection of the min-max normalised, sum-normalised maps."""
    p, g = _pair(p, g)
    return float(np.minimum(_minmax_distribution(p), _minmax_distribution(g)).sum())


def heatmap_nss(p: np.ndarray, g: np.ndarray) -> float:
    """Mean z-score of P over the fixations (G > 0); ``nan`` for constant P or no fixation."""
    p, g = _pair(p, g)
    fix = g > 0
    std = p.std()
    if not fix.any() or std == 0:
        return math.nan
    return float(((p - p.mean()) / std)[fix].mean())


def heatmap_auc_judd(p: np.ndarray, g: np.ndarray, seed: int = 0) -> float:
    """AUC-Judd with seeded 1e-7 tie-breaking noise (see metrics.md); ``nan`` if undefined.

    Undefined without fixations, or when every pixel is a fixation (no false-positive axis).
    """
    p, g = _pair(p, g)
    fix = (g > 0).ravel()
    n_fix = int(fix.sum())
    n_pix = fix.size
    if n_fix == 0 or n_fix == n_pix:
        return math.nan
    rng = np.random.default_rng(seed)
    s = p.ravel() + rng.random(n_pix) * 1e-7
    lo, hi = s.min(), s.max()
    s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    thresholds = np.sort(s[fix])[::-1]
    s_sorted = np.sort(s)
    above = n_pix - np.searchsorted(s_sorted, thresholds, side="left")  # count(s >= t)
    i = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], i / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - i) / (n_pix - n_fix), [1.0]])
    return float(np.trapezoid(tp, fp))


@dataclass
class HeatmapMetrics:
    """One heatmap task over a split. Saliency metrics average over GT > 0 images only."""

    mse_all: float | None
    mse_gt0: float | None
    cc: float | None
    kld: float | None
    sim: float | None
    nss: float | None
    auc_judd: float | None
    n_images: int
    n_gt0: int
    n_gtpos: int
    kld_eps: float


def _nanmean(values: list[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else None


def evaluate_heatmaps(
    preds: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    *,
    kld_eps: float = MIT_EPS,
    seed: int = 0,
) -> HeatmapMetrics:
    """Aggregate the heatmap table of the paper over a split."""
    if len(preds) != len(truths):
        raise ValueError(f"{len(preds)} predictions for {len(truths)} ground truths")
    mse_all, mse_gt0 = [], []
    cc, kld, sim, nss, auc = [], [], [], [], []
    for p, g in zip(preds, truths, strict=True):
        mse = heatmap_mse(p, g)
        mse_all.append(mse)
        if not (np.asarray(g) > 0).any():
            mse_gt0.append(mse)
            continue
        cc.append(heatmap_cc(p, g))
        kld.append(heatmap_kld(p, g, eps=kld_eps))
        sim.append(heatmap_sim(p, g))
        nss.append(heatmap_nss(p, g))
        auc.append(heatmap_auc_judd(p, g, seed=seed))
    return HeatmapMetrics(
        mse_all=_nanmean(mse_all),
        mse_gt0=_nanmean(mse_gt0),
        cc=_nanmean(cc),
        kld=_nanmean(kld),
        sim=_nanmean(sim),
        nss=_nanmean(nss),
        auc_judd=_nanmean(auc),
        n_images=len(mse_all),
        n_gt0=len(mse_gt0),
        n_gtpos=len(cc),
        kld_eps=kld_eps,
    )


# --------------------------------------------------------------------------- keywords


@dataclass
class PRF:
    """Precision / recall / F1; ``None`` where a denominator is zero (pooled variant)."""

    precision: float | None
    recall: float | None
    f1: float | None


@dataclass
class KeywordMetrics:
    """Pooled over all words of all prompts, and per prompt then averaged."""

    pooled: PRF
    per_prompt: PRF
    n_prompts: int
    tp: int
    fp: int
    fn: int


def keyword_counts(generated: str, target: str) -> tuple[int, int, int]:
    """(tp, fp, fn) of the misaligned class for one prompt, by positional alignment.

    Word i of the generated sequence is compared with word i of the target (both split like
    the labels). A generated word is a true positive when it carries "_0" and its stem equals
    the target word at the same position, which itself carries "_0". Generated words past the
    end of the target that carry "_0" are false positives; target words with no generated
    word at their position count as predicted "not misaligned" (false negatives if positive).
    """
    gen = parse_tagged(generated)
    tgt = parse_tagged(target)
    tp = fp = fn = 0
    for i in range(max(len(gen), len(tgt))):
        g_word, g_pos = gen[i] if i < len(gen) else ("", False)
        t_word, t_pos = tgt[i] if i < len(tgt) else ("", False)
        hit = g_pos and t_pos and g_word == t_word
        if hit:
            tp += 1
        else:
            fp += int(g_pos)
            fn += int(t_pos)
    return tp, fp, fn


def _prf(tp: int, fp: int, fn: int) -> PRF:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return PRF(p, r, f)


def evaluate_keywords(generated: Sequence[str], targets: Sequence[str]) -> KeywordMetrics:
    """Keyword precision/recall/F1, pooled and per prompt.

    Per prompt, a prompt with no positive in either sequence scores P = R = F1 = 1 (nothing to
    find, nothing claimed); otherwise an empty denominator scores 0. Pooled values are
    ``None`` when undefined (e.g. precision of a model that never predicts "_0").
    """
    if len(generated) != len(targets):
        raise ValueError(f"{len(generated)} generated sequences for {len(targets)} targets")
    tp_all = fp_all = fn_all = 0
    per_p, per_r, per_f = [], [], []
    for gen, tgt in zip(generated, targets, strict=True):
        tp, fp, fn = keyword_counts(gen, tgt)
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        if tp + fp + fn == 0:
            per_p.append(1.0)
            per_r.append(1.0)
            per_f.append(1.0)
        else:
            prf = _prf(tp, fp, fn)
            per_p.append(prf.precision or 0.0)
            per_r.append(prf.recall or 0.0)
            per_f.append(prf.f1 or 0.0)
    n = len(targets)
    per = PRF(*(float(np.mean(v)) if n else None for v in (per_p, per_r, per_f)))
    return KeywordMetrics(_prf(tp_all, fp_all, fn_all), per, n, tp_all, fp_all, fn_all)


# --------------------------------------------------------------------------- report


@dataclass
class ScoreMetrics:
    """PLCC and SRCC for one score type over a split (plus MSE, which, unlike the
    correlations, is defined for a constant predictor such as the mean-score baseline)."""

    plcc: float | None
    srcc: float | None
    n: int
    mse: float | None = None


@dataclass
class EvaluationReport:
    """Everything the paper's tables hold, for one model (or baseline) on one split."""

    scores: dict[str, ScoreMetrics] = field(default_factory=dict)
    heatmaps: dict[str, HeatmapMetrics] = field(default_factory=dict)
    keywords: KeywordMetrics | None = None

    def combined(self) -> float:
        """Model-selection metric: the sum of normalised metrics (higher is better).

        mean PLCC over scores + mean CC over heatmaps (GT > 0) + pooled keyword F1, each in
        [-1, 1] or [0, 1]; undefined values count as 0. Lower-is-better metrics (MSE, KLD) are
        left out because their scale depends on the data.
        """
        plccs = [s.plcc or 0.0 for s in self.scores.values()]
        ccs = [h.cc or 0.0 for h in self.heatmaps.values()]
        total = float(np.mean(plccs)) if plccs else 0.0
        total += float(np.mean(ccs)) if ccs else 0.0
        if self.keywords is not None:
            total += self.keywords.pooled.f1 or 0.0
        return total

    def to_dict(self) -> dict:
        """JSON-ready dict (``None`` for undefined values)."""
        return asdict(self) | {"combined": self.combined()}


def evaluate_scores(preds: Sequence[float], truths: Sequence[float]) -> ScoreMetrics:
    """PLCC and SRCC of one score type."""
    p = np.asarray(preds, dtype=np.float64)
    t = np.asarray(truths, dtype=np.float64)
    mse = float(((p - t) ** 2).mean()) if t.size else None
    return ScoreMetrics(plcc(p, t), srcc(p, t), len(t), mse)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "undef" if value is None else f"{value:.{digits}f}"


def format_report(reports: dict[str, EvaluationReport]) -> str:
    """Plain-text tables, one column per model/baseline, like the paper's tables."""
    names = list(reports)
    width = max(12, *(len(n) + 2 for n in names))
    lines: list[str] = []

    def row(label: str, values: list[str]) -> None:
        lines.append(f"{label:<34}" + "".join(f"{v:>{width}}" for v in values))

    first = next(iter(reports.values()))
    if first.scores:
        lines.append("Scores")
        row("", names)
        for task in first.scores:
            for metric in ("plcc", "srcc", "mse"):
                row(
                    f"  {task} {metric.upper()}",
                    [
                        _fmt(getattr(reports[n].scores[task], metric)) if task in reports[n].scores else "-"
                        for n in names
                    ],
                )
    for task, hm in first.heatmaps.items():
        lines.append(f"Heatmap: {task} (n={hm.n_images}, GT=0: {hm.n_gt0}, GT>0: {hm.n_gtpos}; KLD eps={hm.kld_eps:g})")
        row("", names)
        for metric, label, digits in (
            ("mse_all", "MSE all", 5),
            ("mse_gt0", "MSE GT=0", 5),
            ("cc", "CC (GT>0)", 3),
            ("kld", "KLD (GT>0)", 3),
            ("sim", "SIM (GT>0)", 3),
            ("nss", "NSS (GT>0)", 3),
            ("auc_judd", "AUC-Judd (GT>0)", 3),
        ):
            row(
                f"  {label}",
                [
                    _fmt(getattr(reports[n].heatmaps[task], metric), digits) if task in reports[n].heatmaps else "-"
                    for n in names
                ],
            )
    if first.keywords is not None:
        lines.append(f"Misaligned keywords (n={first.keywords.n_prompts} prompts; positional alignment)")
        row("", names)
        for variant in ("pooled", "per_prompt"):
            for metric in ("precision", "recall", "f1"):
                vals = []
                for n in names:
                    kw = reports[n].keywords
                    vals.append(_fmt(getattr(getattr(kw, variant), metric)) if kw else "-")
                row(f"  {metric} ({variant.replace('_', '-')})", vals)
    lines.append("Combined dev metric (mean PLCC + mean heatmap CC + pooled keyword F1)")
    row("", names)
    row("  combined", [f"{reports[n].combined():.3f}" for n in names])
    return "\n".join(lines)
