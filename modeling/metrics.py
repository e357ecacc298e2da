"""The paper's evaluation metrics (spec metrics.md).

Saliency metrics follow the MIT saliency benchmark code (cvzoya/saliency, code_forMetrics/*.m)
with the deviations the spec asks for. A metric that has no value for an input (a constant
map, no fixation, ...) is *undefined*: ``nan`` from the per-image functions, ``None`` in
aggregates, never 0, because a silent 0 would be read as a (terrible) measurement. The split
aggregates average the defined per-image values and count the others, with the reason, in
``HeatmapMetrics.left_out``, so a table never hides how many images an average rests on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from modeling.text import parse_tagged

#: MATLAB's ``eps`` (2^-52), which the MIT code adds in KLdiv.m; the RichHF reimplementation
#: uses 1e-8. The exact value, not a rounded literal, so MIT-eps KLDs match the MIT code.
MIT_EPS: float = float(np.finfo(np.float64).eps)
RICHHF_EPS = 1e-8
#: Machine epsilon of the float64 arithmetic every metric runs in (same number as MIT_EPS,
#: another meaning: the rounding allowance of ``_is_constant``).
_FLOAT64_EPS: float = float(np.finfo(np.float64).eps)

#: Why a value is undefined (the keys of ``HeatmapMetrics.left_out[metric]``).
CONSTANT_PREDICTION = "constant prediction"
CONSTANT_TRUTH = "constant ground truth"
NO_FIXATION = "no fixation"
ALL_FIXATED = "every pixel fixated"
NON_FINITE = "non-finite values"
TOO_FEW = "fewer than 2 values"


@dataclass(frozen=True)
class Undefined:
    """A metric without a value for one input, and why (one of the reasons above)."""

    reason: str


def _nan_if_undefined(value: float | Undefined) -> float:
    return math.nan if isinstance(value, Undefined) else value


def _is_constant(x: np.ndarray) -> bool:
    """True when ``x`` is constant up to the rounding of our own float64 arithmetic.

    An exact ``std == 0`` test misses constant inputs: the computed mean of n copies of c is
    off by up to about n * u * |c| (the recursive-summation error bound, Higham, "Accuracy and
    Stability of Numerical Algorithms", section 4.2; u = eps / 2, any summation order), so the
    centred values are all that residue and a "correlation" of pure rounding comes out:
    ``plcc([0.3] * 955, x)`` gave -7.5e-17 and NSS of a constant map gave +-1. Comparing the
    standard deviation with n * eps * max|x| covers that bound twice over. The threshold is
    relative to the data's scale, so small but real maps (values around 1e-9) keep their
    value; a genuine signal would need a relative spread below n * eps (9e-13 for a 64x64
    map, far below float32's 6e-8 resolution) to be mistaken for a constant.
    """
    n = x.size
    if n < 2:
        return True
    scale = float(np.abs(x).max())
    centred = x - x.mean()
    return math.sqrt(float((centred * centred).mean())) <= n * _FLOAT64_EPS * scale


# --------------------------------------------------------------------------- scores


def _pearson(x: np.ndarray, y: np.ndarray) -> float | Undefined:
    """Pearson correlation of x (the prediction) and y (the truth), or why it is undefined."""
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {x.shape} vs {y.shape}")
    if x.size < 2:
        return Undefined(TOO_FEW)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return Undefined(NON_FINITE)
    if _is_constant(x):
        return Undefined(CONSTANT_PREDICTION)
    if _is_constant(y):
        return Undefined(CONSTANT_TRUTH)
    xc, yc = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((xc * xc).sum()) * float((yc * yc).sum()))
    return float(np.clip((xc * yc).sum() / denom, -1.0, 1.0))


def _spearman(x: np.ndarray, y: np.ndarray) -> float | Undefined:
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {x.shape} vs {y.shape}")
    if x.size >= 2 and not (np.isfinite(x).all() and np.isfinite(y).all()):
        return Undefined(NON_FINITE)  # rankdata would rank nan, so check first
    # Ties share their average rank exactly, so a constant side gives exactly constant ranks.
    return _pearson(rankdata(x), rankdata(y)) if x.size >= 2 else Undefined(TOO_FEW)


def _vector(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).ravel()


def plcc(pred: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray) -> float | None:
    """Pearson correlation; ``None`` when undefined (fewer than 2 values, a non-finite value,
    or a side constant up to rounding, see ``_is_constant``)."""
    value = _pearson(_vector(pred), _vector(true))
    return None if isinstance(value, Undefined) else value


def srcc(pred: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); ``None`` when undefined."""
    value = _spearman(_vector(pred), _vector(true))
    return None if isinstance(value, Undefined) else value


# --------------------------------------------------------------------------- heatmaps


def _pair(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"heatmap shapes differ: {p.shape} vs {g.shape}")
    return p, g


def _finite(p: np.ndarray, g: np.ndarray) -> bool:
    return bool(np.isfinite(p).all() and np.isfinite(g).all())


def _mse(p: np.ndarray, g: np.ndarray) -> float | Undefined:
    p, g = _pair(p, g)
    if not _finite(p, g):
        return Undefined(NON_FINITE)
    return float(((p - g) ** 2).mean())


def _cc(p: np.ndarray, g: np.ndarray) -> float | Undefined:
    # MIT CC.m: z-score both maps, then corr2, i.e. Pearson's r over pixels.
    p, g = _pair(p, g)
    return _pearson(p.ravel(), g.ravel())


def _distribution(m: np.ndarray) -> np.ndarray:
    total = m.sum()
    # MIT KLdiv.m: an all-zero map has no mass to spread; it stays zero (KLD penalises it fully).
    return m / total if total > 0 else np.zeros_like(m)


def _kld(p: np.ndarray, g: np.ndarray, eps: float) -> float | Undefined:
    p, g = _pair(p, g)
    if not _finite(p, g):
        return Undefined(NON_FINITE)
    pn, gn = _distribution(p), _distribution(g)
    return float((gn * np.log(eps + gn / (pn + eps))).sum())


def _sim_distribution(m: np.ndarray) -> np.ndarray | None:
    """MIT similarity.m's normalisation; ``None`` for a constant non-zero map.

    A zero map stays a zero map (so SIM against it is 0: it predicts no region). Any other
    map is min-max normalised, then divided by its sum; for a constant map min-max is 0/0 and
    the MIT code returns NaN, which here is "undefined".
    """
    if not m.any():
        return np.zeros_like(m)
    if _is_constant(m):
        return None
    m = (m - m.min()) / (m.max() - m.min())
    return m / m.sum()


def _sim(p: np.ndarray, g: np.ndarray) -> float | Undefined:
    p, g = _pair(p, g)
    if not _finite(p, g):
        return Undefined(NON_FINITE)
    pn, gn = _sim_distribution(p), _sim_distribution(g)
    if pn is None:
        return Undefined(CONSTANT_PREDICTION)
    if gn is None:
        return Undefined(CONSTANT_TRUTH)
    return float(np.minimum(pn, gn).sum())


def _nss(p: np.ndarray, g: np.ndarray) -> float | Undefined:
    p, g = _pair(p, g)
    if not _finite(p, g):
        return Undefined(NON_FINITE)
    fix = g > 0
    if not fix.any():
        return Undefined(NO_FIXATION)
    if _is_constant(p):
        return Undefined(CONSTANT_PREDICTION)
    # MIT NSS.m divides by MATLAB's std, which normalises by N - 1 (ddof=1).
    z = (p - p.mean()) / p.std(ddof=1)
    return float(z[fix].mean())


def _auc_judd(p: np.ndarray, g: np.ndarray, seed: int) -> float | Undefined:
    p, g = _pair(p, g)
    if not _finite(p, g):
        return Undefined(NON_FINITE)
    fix = (g > 0).ravel()
    n_fix = int(fix.sum())
    n_pix = fix.size
    if n_fix == 0:
        return Undefined(NO_FIXATION)
    if n_fix == n_pix:
        return Undefined(ALL_FIXATED)  # no negative pixel: the false-positive axis is empty
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


def heatmap_mse(p: np.ndarray, g: np.ndarray) -> float:
    """Mean over pixels of (P - G)^2; ``nan`` for non-finite input."""
    return _nan_if_undefined(_mse(p, g))


def heatmap_cc(p: np.ndarray, g: np.ndarray) -> float:
    """Pearson correlation over pixels; ``nan`` when either map is constant (up to rounding)."""
    return _nan_if_undefined(_cc(p, g))


def heatmap_kld(p: np.ndarray, g: np.ndarray, eps: float = MIT_EPS) -> float:
    """KL divergence of the normalised P from the normalised G (MIT KLdiv.m).

    ``KLD = sum G' log(eps + G' / (P' + eps))``; an all-zero map stays zero. ``eps`` matters a
    lot when P has exact zeros (MIT: 2^-52, RichHF reimplementation: 1e-8); reports say which.
    """
    return _nan_if_undefined(_kld(p, g, eps))


def heatmap_sim(p: np.ndarray, g: np.ndarray) -> float:
    """Histogram intersection of the min-max, sum-normalised maps (MIT similarity.m).

    An all-zero P scores 0; a constant non-zero map is undefined (``nan``).
    """
    return _nan_if_undefined(_sim(p, g))


def heatmap_nss(p: np.ndarray, g: np.ndarray) -> float:
    """Mean z-score (N - 1 standard deviation, as MIT NSS.m) of P over the fixations (G > 0);
    ``nan`` for a constant P or no fixation."""
    return _nan_if_undefined(_nss(p, g))


def heatmap_auc_judd(p: np.ndarray, g: np.ndarray, seed: int = 0) -> float:
    """AUC-Judd with seeded 1e-7 tie-breaking noise (see metrics.md); ``nan`` if undefined.

    Undefined without fixations, or when every pixel is a fixation (no false-positive axis).
    """
    return _nan_if_undefined(_auc_judd(p, g, seed))


#: The per-image averages of a heatmap table, in the order they are printed.
HEATMAP_AVERAGES: tuple[str, ...] = ("mse_all", "mse_gt0", "cc", "kld", "sim", "nss", "auc_judd")


@dataclass
class HeatmapMetrics:
    """One heatmap task over a split. Saliency metrics average over GT > 0 images only.

    ``left_out[metric]`` counts, by reason, the images whose value of that metric is
    undefined: they are not in its average (every metric of ``HEATMAP_AVERAGES`` has a key,
    with ``{}`` when none was left out).
    """

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
    left_out: dict[str, dict[str, int]] = field(default_factory=dict)

    def n_left_out(self, metric: str) -> int:
        """How many images the average of ``metric`` left out."""
        return sum(self.left_out.get(metric, {}).values())


class _Average:
    """Running per-image average that counts the undefined values by reason."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.left_out: Counter[str] = Counter()

    def add(self, value: float | Undefined) -> None:
        if isinstance(value, Undefined):
            self.left_out[value.reason] += 1
        else:
            self.values.append(value)

    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None


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
    avg = {metric: _Average() for metric in HEATMAP_AVERAGES}
    n_gt0 = n_gtpos = 0
    for p, g in zip(preds, truths, strict=True):
        mse = _mse(p, g)
        avg["mse_all"].add(mse)
        if not (np.asarray(g) > 0).any():
            n_gt0 += 1
            avg["mse_gt0"].add(mse)
            continue
        n_gtpos += 1
        avg["cc"].add(_cc(p, g))
        avg["kld"].add(_kld(p, g, kld_eps))
        avg["sim"].add(_sim(p, g))
        avg["nss"].add(_nss(p, g))
        avg["auc_judd"].add(_auc_judd(p, g, seed))
    return HeatmapMetrics(
        mse_all=avg["mse_all"].mean(),
        mse_gt0=avg["mse_gt0"].mean(),
        cc=avg["cc"].mean(),
        kld=avg["kld"].mean(),
        sim=avg["sim"].mean(),
        nss=avg["nss"].mean(),
        auc_judd=avg["auc_judd"].mean(),
        n_images=len(preds),
        n_gt0=n_gt0,
        n_gtpos=n_gtpos,
        kld_eps=kld_eps,
        left_out={metric: dict(sorted(a.left_out.items())) for metric, a in avg.items()},
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
    correlations, is defined for a constant predictor such as the mean-score baseline).

    ``undefined`` says why PLCC/SRCC are undefined (e.g. "constant prediction"), else ``None``.
    """

    plcc: float | None
    srcc: float | None
    n: int
    mse: float | None = None
    undefined: str | None = None


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``None`` for undefined values)."""
        return asdict(self) | {"combined": self.combined()}


def evaluate_scores(preds: Sequence[float] | np.ndarray, truths: Sequence[float] | np.ndarray) -> ScoreMetrics:
    """PLCC and SRCC of one score type."""
    p, t = _vector(preds), _vector(truths)
    if p.shape != t.shape:
        raise ValueError(f"{p.size} predictions for {t.size} ground truths")
    mse = float(((p - t) ** 2).mean()) if t.size else None
    r, rho = _pearson(p, t), _spearman(p, t)
    # Ranks are constant exactly when the values are, so the two share their reason.
    reason = r.reason if isinstance(r, Undefined) else rho.reason if isinstance(rho, Undefined) else None
    return ScoreMetrics(
        plcc=None if isinstance(r, Undefined) else r,
        srcc=None if isinstance(rho, Undefined) else rho,
        n=int(t.size),
        mse=mse,
        undefined=reason,
    )


def _fmt(value: float | None, digits: int = 3) -> str:
    return "undef" if value is None else f"{value:.{digits}f}"


_HEATMAP_ROWS: tuple[tuple[str, str, int], ...] = (
    ("mse_all", "MSE all", 5),
    ("mse_gt0", "MSE GT=0", 5),
    ("cc", "CC (GT>0)", 3),
    ("kld", "KLD (GT>0)", 3),
    ("sim", "SIM (GT>0)", 3),
    ("nss", "NSS (GT>0)", 3),
    ("auc_judd", "AUC-Judd (GT>0)", 3),
)


def _left_out_note(label: str, reasons: dict[str, int]) -> str:
    """ "CC 224 (constant prediction)", or with several reasons "CC 3 (a: 2, b: 1)"."""
    short = label.split(" (")[0]
    if len(reasons) == 1:
        [(reason, count)] = reasons.items()
        return f"{short} {count} ({reason})"
    return f"{short} {sum(reasons.values())} (" + ", ".join(f"{r}: {c}" for r, c in reasons.items()) + ")"


def format_report(reports: dict[str, EvaluationReport]) -> str:
    """Plain-text tables, one column per model/baseline, like the paper's tables.

    Under each heatmap table, how many images each average left out (their value is
    undefined) and why, per column, so no average silently rests on fewer images.
    """
    names = list(reports)
    width = max(12, *(len(n) + 2 for n in names))
    lines: list[str] = []

    def row(label: str, values: list[str]) -> None:
        lines.append(f"{label:<34}" + "".join(f"{v:>{width}}" for v in values))

    # Each baseline answers only some tasks: list every task any column has, in order.
    score_tasks = list(dict.fromkeys(t for r in reports.values() for t in r.scores))
    heatmap_tasks = list(dict.fromkeys(t for r in reports.values() for t in r.heatmaps))
    keyword_reports = [r.keywords for r in reports.values() if r.keywords is not None]
    if score_tasks:
        lines.append("Scores")
        row("", names)
        for task in score_tasks:
            for metric in ("plcc", "srcc", "mse"):
                row(
                    f"  {task} {metric.upper()}",
                    [
                        _fmt(getattr(reports[n].scores[task], metric)) if task in reports[n].scores else "-"
                        for n in names
                    ],
                )
        for n in names:
            by_reason: dict[str, list[str]] = {}
            for t, score in reports[n].scores.items():
                if score.undefined:
                    by_reason.setdefault(score.undefined, []).append(t)
            for reason, tasks in by_reason.items():
                lines.append(f"  undef PLCC/SRCC in {n} ({reason}): {', '.join(tasks)}")
    for task in heatmap_tasks:
        hm = next(r.heatmaps[task] for r in reports.values() if task in r.heatmaps)
        lines.append(
            f"Heatmap: {task} (n={hm.n_images}, GT=0: {hm.n_gt0}, GT>0: {hm.n_gtpos}; KLD eps={hm.kld_eps:.7g})"
        )
        row("", names)
        maps = {n: reports[n].heatmaps[task] for n in names if task in reports[n].heatmaps}
        for metric, label, digits in _HEATMAP_ROWS:
            row(f"  {label}", [_fmt(getattr(maps[n], metric), digits) if n in maps else "-" for n in names])
            if any(m.n_left_out(metric) for m in maps.values()):
                row("    images left out", [str(maps[n].n_left_out(metric)) if n in maps else "-" for n in names])
        notes = [
            f"{n}: "
            + "; ".join(
                _left_out_note(label, m.left_out[metric])
                for metric, label, _ in _HEATMAP_ROWS
                if m.left_out.get(metric)
            )
            for n, m in maps.items()
            if any(m.left_out.values())
        ]
        if notes:
            lines.append("  Left out of the averages (value undefined for that image):")
            lines += [f"    {note}" for note in notes]
        else:
            lines.append("  Left out of the averages: none (every per-image value defined)")
    if keyword_reports:
        lines.append(f"Misaligned keywords (n={keyword_reports[0].n_prompts} prompts; positional alignment)")
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
