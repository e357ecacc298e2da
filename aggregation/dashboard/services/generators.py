"""The "Generators" section: how the image generators of a campaign compare (pure numpy, no
queries; the selector `campaign_generator_data` reads the rows).

Per generator, over its rated items (items with an aggregate; gold items never count):
- the mean normalised score per score name ((s - 1) / 4 averaged over the item's raters, so
  0 = worst, 1 = best) with a 95% percentile bootstrap interval;
- the share of images with implausible regions (at least one implausibility point);
- the mean heatmap area: the share of the image the aggregate map covers (pixels > 0);
- the words most often marked misaligned by the majority of the raters.

Pairwise differences of the mean scores: a two-sided permutation test of the difference of the
means (exact, over every relabelling, when there are at most EXACT_MAX of them; otherwise
N_PERM random relabellings, p = (1 + hits) / (1 + N_PERM)), Holm-Bonferroni adjusted over all
the comparisons of the section (every pair of generators times every score), significant when
the adjusted p < ALPHA. A bootstrap 95% interval of the difference is shown beside it.

Items not rated yet get the active model's predicted scores as an automatic estimate, shown
beside the model's PLCC/SRCC with the human scores on the rated dev items of its evaluation.

Every random draw comes from one seeded generator per call, so a recompute gives the same
payload.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import numpy as np

from modeling.protocol import MAP_KINDS, SCORE_NAMES

from ..selectors import GeneratorData

N_BOOT = 2000
N_PERM = 2000
EXACT_MAX = 5000
SEED = 20240614
ALPHA = 0.05
TOP_WORDS = 8
UNKNOWN = "(not recorded)"
# Resampled cells per block: bounds the memory of the vectorised bootstrap (about 16 MB).
BLOCK_CELLS = 2_000_000


def _r(x: float | None, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def bootstrap_means(x: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, columns) means of resamples of the rows of x (n, columns), drawn with
    replacement. Vectorised: each resample is a row of draw counts (one bincount over a block of
    random indices), and the means are counts @ x / n, in blocks of about BLOCK_CELLS."""
    n = x.shape[0]
    if n == 0:
        return np.full((n_boot, x.shape[1]), np.nan)
    out = np.empty((n_boot, x.shape[1]))
    block = max(1, BLOCK_CELLS // n)
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        out[start : start + size] = counts @ x / n
    return out


def percentile_ci(boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the 2.5th and 97.5th percentiles of the bootstrap means."""
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return low, high


def permutation_p(a: np.ndarray, b: np.ndarray, *, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Two-sided permutation p-values of mean(a) - mean(b), one per column of a (na, c) and b (nb, c).

    Exact (every way to choose which na of the pooled rows are "a") when there are at most
    EXACT_MAX such ways; else N_PERM random relabellings with p = (1 + hits) / (1 + N_PERM)."""
    pooled = np.vstack([a, b])
    n, na = pooled.shape[0], a.shape[0]
    observed = np.abs(a.mean(axis=0) - b.mean(axis=0))
    total = pooled.sum(axis=0)
    ways = math.comb(n, na)
    # A tolerance so that relabellings equal to the observed one count, whatever the rounding.
    tol = 1e-9 if ways <= EXACT_MAX else 1e-5
    if ways <= EXACT_MAX:
        combos = np.array(list(itertools.combinations(range(n), na)), dtype=np.int64).reshape(ways, na)
        sums_a = pooled[combos].sum(axis=1)  # (ways, c)
        diffs = np.abs(sums_a / na - (total - sums_a) / (n - na))
        return (diffs >= observed - tol).mean(axis=0), "exact"
    hits = np.zeros(pooled.shape[1])
    block = max(1, BLOCK_CELLS // n)
    # float32 halves the matrix product's cost; the sums of at most a few thousand values in
    # 0..1 keep far more precision than the tolerance below needs.
    labels = np.zeros(n, dtype=np.float32)
    labels[:na] = 1.0
    pooled32 = pooled.astype(np.float32)
    for start in range(0, N_PERM, block):
        size = min(block, N_PERM - start)
        # Each row: the labels shuffled (Fisher-Yates, in C), i.e. a uniformly random relabelling.
        mask = rng.permuted(np.broadcast_to(labels, (size, n)), axis=1)
        sums_a = (mask @ pooled32).astype(np.float64)
        diffs = np.abs(sums_a / na - (total - sums_a) / (n - na))
        hits += (diffs >= observed - tol).sum(axis=0)
    return (1.0 + hits) / (1.0 + N_PERM), f"monte carlo ({N_PERM} relabellings)"


def holm(p: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


_WORD = re.compile(r"[^\w'-]+")


def _clean(word: str) -> str:
    return _WORD.sub("", word.lower())


def generators_section(data: GeneratorData) -> dict:
    rng = np.random.default_rng(SEED)
    names = sorted(set(data.generator) | set(data.estimate_generator), key=lambda g: (g == "", g))
    label = {g: g or UNKNOWN for g in names}
    gen = np.array(data.generator, dtype=object)
    est_gen = np.array(data.estimate_generator, dtype=object)
    # One matrix per rated row: the scores, then "has implausible regions", then the areas.
    features = np.column_stack(
        [
            data.scores.reshape(-1, len(SCORE_NAMES)),
            (data.implausible_points > 0).astype(float),
            *[data.coverage[k] for k in MAP_KINDS],
        ]
    ).reshape(len(data.generator), len(SCORE_NAMES) + 1 + len(MAP_KINDS))
    n_scores = len(SCORE_NAMES)
    rows: list[dict] = []
    boots: dict[str, np.ndarray] = {}
    for g in names:
        sel = gen == g
        x = features[sel]
        n = int(sel.sum())
        boot = bootstrap_means(x, n_boot=N_BOOT, rng=rng)
        boots[g] = boot
        mean = x.mean(axis=0) if n else np.full(x.shape[1], np.nan)
        low, high = percentile_ci(boot) if n else (mean, mean)

        def stat(j: int, mean=mean, low=low, high=high, n=n) -> dict:
            return {"mean": _r(mean[j]), "ci_low": _r(low[j]), "ci_high": _r(high[j]), "n": n}

        words = Counter(
            word
            for item_words in itertools.compress(data.misaligned_words, sel)
            # A word counts once per item, however often the prompt repeats it.
            for word in {_clean(w) for w in item_words} - {""}
        )
        est = data.estimate_scores[est_gen == g] if len(est_gen) else np.zeros((0, n_scores))
        est_boot = bootstrap_means(est, n_boot=N_BOOT, rng=rng)
        est_mean = est.mean(axis=0) if len(est) else np.full(n_scores, np.nan)
        est_low, est_high = percentile_ci(est_boot) if len(est) else (est_mean, est_mean)
        rows.append(
            {
                "generator": label[g],
                "n_rated": n,
                "n_estimated": len(est),
                "scores": {s: stat(j) for j, s in enumerate(SCORE_NAMES)},
                "implausible_share": stat(n_scores),
                "area": {k: stat(n_scores + 1 + j) for j, k in enumerate(MAP_KINDS)},
                "top_words": [
                    {"word": w, "count": c, "share": _r(c / n) if n else None}
                    for w, c in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_WORDS]
                ],
                "estimate": {
                    s: {
                        "mean": _r(est_mean[j]),
                        "ci_low": _r(est_low[j]),
                        "ci_high": _r(est_high[j]),
                        "n": len(est),
                    }
                    for j, s in enumerate(SCORE_NAMES)
                },
            }
        )
    pairs: list[dict] = []
    for g1, g2 in itertools.combinations([g for g in names if (gen == g).sum() >= 1], 2):
        a, b = features[gen == g1][:, :n_scores], features[gen == g2][:, :n_scores]
        p, test = permutation_p(a, b, rng=rng)
        diff_boot = boots[g1][:, :n_scores] - boots[g2][:, :n_scores]
        low, high = percentile_ci(diff_boot)
        diff = a.mean(axis=0) - b.mean(axis=0)
        for j, s in enumerate(SCORE_NAMES):
            pairs.append(
                {
                    "score": s,
                    "a": label[g1],
                    "b": label[g2],
                    "n_a": len(a),
                    "n_b": len(b),
                    "diff": _r(diff[j]),
                    "ci_low": _r(low[j]),
                    "ci_high": _r(high[j]),
                    "p": _r(p[j]),
                    "test": test,
                }
            )
    for pair, adjusted in zip(pairs, holm([pr["p"] for pr in pairs]), strict=True):
        pair["p_holm"] = _r(adjusted)
        pair["significant"] = adjusted < ALPHA
    return {
        "generators": [label[g] for g in names],
        "rows": rows,
        "pairs": pairs,
        "model": data.model,
        "methods": {
            "interval": f"95% percentile bootstrap over items, {N_BOOT} resamples, seed {SEED}",
            "test": (
                "two-sided permutation test of the difference of the mean normalised scores "
                f"(exact when there are at most {EXACT_MAX} relabellings, else {N_PERM} random ones), "
                f"Holm-Bonferroni adjusted over all {len(pairs)} comparisons; significant when adjusted p < {ALPHA}"
            ),
            "rated": "items with an aggregate; gold items excluded",
            "estimate": "the active model's predicted scores on items without an aggregate",
        },
    }
