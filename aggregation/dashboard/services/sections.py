"""The dashboard payload's sections, one pure function each: a CampaignAnswerTable (and the few
other reads the section needs) in, the section's JSON-ready value out. No queries here; the
recompute service reads through the selectors and composes these.
"""

from __future__ import annotations

import statistics as pystats
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from aggregation.services.agreement import map_agreement
from annotation.selectors import CampaignProgress
from modeling.heatmaps import RasterGeometry, rater_masks
from modeling.protocol import MAP_KINDS, SCORE_NAMES

from ..selectors import CampaignAnswerTable
from . import statistics as st

ALPHA_LEVEL = "interval"
N_BOOT = 500
BOOT_SEED = 20240601
WORST_ITEMS = 30
ACTIVE_DAYS = 7
MAP_METRICS = ("iou", "cc")

#: Item pk -> "<map kind>_iou" / "<map kind>_cc" -> mean pairwise value (None where undefined).
MapAgreementByItem = dict[int, dict[str, float | None]]


def nan_to_none(x: Any) -> float | None:
    """A JSON-ready float: None for missing or NaN, else rounded to 6 decimals."""
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def ratings_of(table: CampaignAnswerTable) -> st.RatingTable:
    return st.RatingTable(
        item=table.item,
        rater=table.rater,
        scores=table.score_matrix(),
        word_marks=table.word_marks,
        n_items=table.n_items,
        n_raters=table.n_raters,
    )


def item_maxdiff(table: CampaignAnswerTable) -> dict[str, np.ndarray]:
    """Score name -> (n_items,) maxdiff of each item's raters; NaN for single-rater items."""
    multi = table.item_n_answers >= 2
    out = {}
    for name in SCORE_NAMES:
        md = np.full(table.n_items, np.nan)
        md[multi] = st.run_maxdiff(table.scores[name], table.item_first)[multi]
        out[name] = md
    return out


# --------------------------------------------------------------------------- sections


def progress_section(
    *,
    table: CampaignAnswerTable,
    progress: CampaignProgress,
    per_day: list[tuple[date, int]],
    now: datetime,
) -> dict:
    active_since = now - timedelta(days=ACTIVE_DAYS)
    active_raters = len({r for r, at in zip(table.rater.tolist(), table.created_at, strict=True) if at >= active_since})
    return {
        "items_total": progress.items_total,
        "items_complete": progress.items_complete,
        "items_in_progress": progress.items_in_progress,
        "items_untouched": progress.items_untouched,
        "annotations": table.n_answers,
        "raters": table.n_raters,
        "active_raters": active_raters,
        "active_days": ACTIVE_DAYS,
        "median_time_s": nan_to_none(pystats.median(table.time_ms.tolist()) / 1000.0) if table.n_answers else None,
        "per_day": [{"day": day.isoformat(), "n": n} for day, n in per_day],
    }


def score_section(*, table: CampaignAnswerTable, name: str, maxdiff: np.ndarray) -> dict:
    """One score's histograms, maxdiff distribution (items with >= 2 raters) and alpha.

    maxdiff: item_maxdiff(table)[name]."""
    col = table.scores[name]
    counts = st.likert_counts(table.item, col, table.n_items)
    alpha = st.krippendorff_alpha_bootstrap(counts, level=ALPHA_LEVEL, n_boot=N_BOOT, seed=BOOT_SEED)
    # The ordinal alpha beside it (no CI): if the two differ much, the raters use the scale's
    # steps unevenly, and the interval assumption deserves a look.
    alpha_ordinal = st.krippendorff_alpha(counts, "ordinal") if table.n_answers else None
    return {
        "raw_histogram": st.raw_histogram(col),
        "averaged_histogram": st.averaged_histogram(st.run_means(col, table.item_first)),
        "mean": nan_to_none(col.mean()) if col.size else None,
        "maxdiff": st.maxdiff_distribution(maxdiff[table.item_n_answers >= 2]),
        "alpha": {k: (nan_to_none(v) if isinstance(v, float) else v) for k, v in alpha.as_dict().items()}
        | {"alpha_ordinal": nan_to_none(alpha_ordinal)},
    }


def words_section(*, table: CampaignAnswerTable) -> dict:
    """Fleiss' kappa on "word marked misaligned", with a bootstrap CI over items."""
    fleiss_table, k_words, word_groups = st.words_fleiss_units(ratings_of(table))
    kappa, low, high = st.fleiss_kappa_bootstrap(fleiss_table, word_groups, n_boot=N_BOOT, seed=BOOT_SEED)
    return {
        "fleiss_kappa": nan_to_none(kappa),
        "ci_low": nan_to_none(low),
        "ci_high": nan_to_none(high),
        "n_units": int(len(fleiss_table)),
        "n_items": int(word_groups.max()) + 1 if len(word_groups) else 0,
        "raters_per_unit": k_words,
    }


@dataclass(frozen=True)
class ItemMapAgreement:
    by_item: MapAgreementByItem  # items with >= 2 raters that got a value, in item order
    computed_here: int  # how many of them had no stored aggregate


def item_map_agreement(
    *,
    table: CampaignAnswerTable,
    stored: MapAgreementByItem,
    heatmap_size: tuple[int, int],
    radius_fraction: float,
    limit: int,
) -> ItemMapAgreement:
    """Pairwise map agreement of every item with >= 2 raters: the stored aggregate's, else
    rasterised here from the raters' points, for at most `limit` items (later ones are left out)."""
    by_item: MapAgreementByItem = {}
    computed_here = 0
    for it in np.flatnonzero(table.item_n_answers >= 2).tolist():
        item_pk = int(table.item_ids[it])
        agreement = stored.get(item_pk)
        if agreement is None:
            if computed_here >= limit:
                continue
            computed_here += 1
            geometry = RasterGeometry(
                int(table.item_width[it]), int(table.item_height[it]), *heatmap_size, radius_fraction
            )
            agreement = {}
            for kind in MAP_KINDS:
                points = table.points[kind]
                ag = map_agreement(rater_masks([points[i] for i in table.item_answers(it)], geometry))
                agreement[f"{kind}_iou"], agreement[f"{kind}_cc"] = ag.iou, ag.cc
        by_item[item_pk] = agreement
    return ItemMapAgreement(by_item=by_item, computed_here=computed_here)


def heatmaps_section(*, agreement: ItemMapAgreement) -> dict:
    """Per map kind, the mean over items of the per-item mean pairwise IoU and CC."""
    section: dict[str, Any] = {}
    for kind in MAP_KINDS:
        values = {
            m: [v for a in agreement.by_item.values() if (v := a[f"{kind}_{m}"]) is not None] for m in MAP_METRICS
        }
        section[kind] = {m: nan_to_none(np.mean(vals)) if vals else None for m, vals in values.items()} | {
            "n_items": len(values["iou"])
        }
    section["computed_without_aggregate"] = agreement.computed_here
    return section


def _min_mad(metric: str, values: list[float | None]) -> float:
    """Smallest spread the outlier rule assumes, in each metric's own unit."""
    if metric.startswith("bias_"):
        return 0.1  # Likert points
    if metric == "median_time_s":
        finite = [v for v in values if v is not None]
        return 0.1 * float(np.median(finite)) if finite else 0.0
    return 0.05  # correlation, share of items


def raters_section(*, table: CampaignAnswerTable, usernames: dict[int, str]) -> list[dict]:
    """Per rater: workload, time, bias and consensus, word disagreement, and outlier flags."""
    ratings = ratings_of(table)
    bias, corr, _ = st.rater_bias_and_consensus(ratings)
    disagree, counted = st.word_majority_disagreement(ratings)
    n_points = table.n_points
    raters = []
    for r, pk in enumerate(table.rater_ids.tolist()):
        mine = table.rater == r
        raters.append(
            {
                "rater_id": pk,
                "username": usernames.get(pk, str(pk)),
                "annotations": int(mine.sum()),
                "median_time_s": nan_to_none(np.median(table.time_ms[mine]) / 1000.0) if mine.any() else None,
                "mean_points": nan_to_none(np.mean(n_points[mine])) if mine.any() else None,
                "bias": {name: nan_to_none(bias[r, s]) for s, name in enumerate(SCORE_NAMES)},
                "consensus_corr": nan_to_none(corr[r]),
                "word_disagreement": nan_to_none(disagree[r] / counted[r]) if counted[r] else None,
                "word_items": int(counted[r]),
            }
        )
    metrics: dict[str, list[float | None]] = {f"bias_{name}": [x["bias"][name] for x in raters] for name in SCORE_NAMES}
    for metric in ("consensus_corr", "word_disagreement", "median_time_s"):
        metrics[metric] = [x[metric] for x in raters]
    zs = {m: st.modified_z(v, min_mad=_min_mad(m, v)) for m, v in metrics.items()}
    for r, row in enumerate(raters):
        row["z"] = {m: nan_to_none(z[r]) for m, z in zs.items()}
        row["outlier_metrics"] = [m for m, z in zs.items() if (zr := z[r]) is not None and abs(zr) > st.OUTLIER_Z]
        row["outlier"] = bool(row["outlier_metrics"])
    return raters


def worst_items_section(
    *,
    table: CampaignAnswerTable,
    maxdiff: dict[str, np.ndarray],
    agreement: ItemMapAgreement,
    open_requests: set[int],
) -> list[dict]:
    """Items with >= 2 raters by largest mean maxdiff over the scores, ties by lowest word
    unanimity, then item id; the first WORST_ITEMS.

    maxdiff: item_maxdiff(table)."""
    by_score = np.stack([maxdiff[name] for name in SCORE_NAMES], axis=1).reshape(-1, len(SCORE_NAMES))
    with np.errstate(invalid="ignore"):
        mean_maxdiff = by_score.mean(axis=1)  # every score is present for a multi-rater item
    unanimity_of = st.word_unanimity(ratings_of(table)).tolist()
    ranked = []
    for it in np.flatnonzero(table.item_n_answers >= 2).tolist():
        unanimity = unanimity_of[it]
        ranked.append((float(mean_maxdiff[it]), -unanimity, int(table.item_ids[it]), it, unanimity))
    ranked.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return [
        {
            "item_id": item_pk,
            "prompt": table.item_prompt[it][:200],
            "n_raters": int(table.item_n_answers[it]),
            "mean_maxdiff": round(md, 4),
            "maxdiff": {name: nan_to_none(maxdiff[name][it]) for name in SCORE_NAMES},
            "word_unanimity": round(unanimity, 4),
            "implausibility_iou": nan_to_none(agreement.by_item.get(item_pk, {}).get("implausibility_iou")),
            "extra_rater_requested": item_pk in open_requests,
        }
        for md, _, item_pk, it, unanimity in ranked[:WORST_ITEMS]
    ]


def methods_section() -> dict:
    return {
        "alpha_level": ALPHA_LEVEL,
        "bootstrap": {"resamples": N_BOOT, "seed": BOOT_SEED, "confidence": 0.95, "over": "items"},
        "outlier_rule": f"modified z-score |z| > {st.OUTLIER_Z} (median/MAD over raters)",
        "paper": {"perfect_share": st.PAPER_PERFECT_SHARE, "good_share": st.PAPER_GOOD_SHARE},
    }
