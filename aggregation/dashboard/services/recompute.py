"""Rebuilds a campaign's dashboard payload from its raw annotations and upserts the cache row.

Nothing is incremented: every figure is recomputed from Annotation rows (and, for heatmap
agreement, from ItemAggregate rows where they are current enough to exist), so running the
task twice gives the same payload. The page and the API only read CampaignStats.
"""

from __future__ import annotations

import statistics as pystats
import time
from collections import defaultdict
from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from aggregation.models import ItemAggregate
from aggregation.services.agreement import map_agreement
from aggregation.services.heatmaps import RasterGeometry, rater_masks
from annotation.models import SCORE_FIELDS, Annotation, Campaign, Item
from annotation.selectors import campaign_progress

from ..models import CampaignStats
from . import statistics as st
from .extra_rater import extra_rater_open_item_ids, extra_rater_requests_settle

STATS_VERSION = 1
ALPHA_LEVEL = "interval"
N_BOOT = 500
BOOT_SEED = 20240601
WORST_ITEMS = 30
ACTIVE_DAYS = 7
REFRESH_DEDUPE = timedelta(minutes=2)
# Items without a stored aggregate get their heatmap agreement computed here; bounded so a
# campaign whose aggregation lags cannot make the recompute arbitrarily slow.
MAX_MAPS_COMPUTED = 400
MAP_KINDS = (("implausibility", "implausible_points"), ("misalignment", "misaligned_points"))


def _nan_to_none(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def _min_mad(metric: str, values: list) -> float:
    """Smallest spread the outlier rule assumes, in each metric's own unit."""
    if metric.startswith("bias_"):
        return 0.1  # Likert points
    if metric == "median_time_s":
        finite = [v for v in values if v is not None]
        return 0.1 * float(np.median(finite)) if finite else 0.0
    return 0.05  # correlation, share of items


def campaign_stats_compute(*, campaign: Campaign) -> dict:
    """The whole payload for one campaign (pure read; no writes)."""
    now = timezone.now()
    rows = list(
        Annotation.objects.filter(item__campaign=campaign)
        .order_by("item_id", "id")
        .values_list(
            "item_id",
            "rater_id",
            *SCORE_FIELDS,
            "time_spent_ms",
            "implausible_points",
            "misaligned_points",
            "misaligned_words",
            "created_at",
        )  # fmt: skip
    )
    items = {
        pk: (words, w, h, prompt)
        for pk, words, w, h, prompt in Item.objects.filter(campaign=campaign).values_list(
            "id", "words", "width", "height", "prompt"
        )
    }
    item_ids = sorted({r[0] for r in rows})
    item_index = {pk: i for i, pk in enumerate(item_ids)}
    rater_ids = sorted({r[1] for r in rows})
    rater_index = {pk: i for i, pk in enumerate(rater_ids)}
    n_s = len(SCORE_FIELDS)
    scores = np.array([r[2 : 2 + n_s] for r in rows], dtype=np.float64).reshape(-1, n_s)
    times = np.array([r[2 + n_s] for r in rows], dtype=np.float64)
    word_marks = []
    for r in rows:
        marks = np.zeros(len(items[r[0]][0]), dtype=bool)
        idx = [i for i in r[5 + n_s] if 0 <= i < len(marks)]
        marks[idx] = True
        word_marks.append(marks)
    table = st.RatingTable(
        item=np.array([item_index[r[0]] for r in rows], dtype=np.int64),
        rater=np.array([rater_index[r[1]] for r in rows], dtype=np.int64),
        scores=scores,
        word_marks=word_marks,
        n_items=len(item_ids),
        n_raters=len(rater_ids),
    )

    # ---- progress
    progress = campaign_progress(campaign=campaign, now=now)
    per_day = (
        Annotation.objects.filter(item__campaign=campaign)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    active_since = now - timedelta(days=ACTIVE_DAYS)
    active_raters = len({r[1] for r in rows if r[-1] >= active_since})

    # ---- per item scores
    per_item: dict[int, list[int]] = defaultdict(list)
    for row_i, it in enumerate(table.item.tolist()):
        per_item[it].append(row_i)
    multi = [ix for ix in per_item.values() if len(ix) >= 2]
    score_blocks = {}
    maxdiff_by_item = np.full((len(item_ids), n_s), np.nan)
    # Rows are ordered by item id, so each item's annotations are one contiguous run and the
    # per-item reductions are single numpy calls (reduceat), whatever the campaign's size.
    starts = np.flatnonzero(np.r_[True, np.diff(table.item) != 0]) if len(rows) else np.zeros(0, dtype=int)
    n_per = np.diff(np.r_[starts, len(rows)])
    is_multi = n_per >= 2
    for s, name in enumerate(SCORE_FIELDS):
        col = scores[:, s] if len(rows) else np.zeros(0)
        counts = np.zeros((len(item_ids), len(st.LIKERT_VALUES)))
        if len(rows):
            means = np.add.reduceat(col, starts) / n_per
            spread = (np.maximum.reduceat(col, starts) - np.minimum.reduceat(col, starts)) / 4.0
            maxdiff_by_item[is_multi, s] = spread[is_multi]
            np.add.at(counts, (table.item, col.astype(np.int64) - 1), 1)
        else:
            means = spread = np.zeros(0)
        md = spread[is_multi]
        alpha = st.krippendorff_alpha_bootstrap(counts, level=ALPHA_LEVEL, n_boot=N_BOOT, seed=BOOT_SEED)
        # The ordinal alpha beside it (no CI): if the two differ much, the raters use the scale's
        # steps unevenly, and the interval assumption deserves a look.
        alpha_ordinal = st.krippendorff_alpha(counts, "ordinal") if len(rows) else None
        score_blocks[name] = {
            "raw_histogram": st.raw_histogram(col),
            "averaged_histogram": st.averaged_histogram(means),
            "mean": _nan_to_none(col.mean()) if col.size else None,
            "maxdiff": st.maxdiff_distribution(md),
            "alpha": {k: (_nan_to_none(v) if isinstance(v, float) else v) for k, v in alpha.as_dict().items()}
            | {"alpha_ordinal": _nan_to_none(alpha_ordinal)},
        }

    # ---- words
    fleiss_table, k_words, word_groups = st.words_fleiss_units(table)
    kappa, kappa_low, kappa_high = st.fleiss_kappa_bootstrap(fleiss_table, word_groups, n_boot=N_BOOT, seed=BOOT_SEED)

    # ---- heatmaps: mean over items of the per-item mean pairwise IoU / CC
    stored = {
        a["item_id"]: a
        for a in ItemAggregate.objects.filter(item__campaign=campaign).values(
            "item_id", "implausibility_iou", "implausibility_cc", "misalignment_iou", "misalignment_cc"
        )
    }
    map_vals: dict[str, dict[str, list[float]]] = {k: {"iou": [], "cc": []} for k, _ in MAP_KINDS}
    computed_here = 0
    per_item_iou: dict[int, float] = {}
    for ix in multi:
        item_pk = item_ids[table.item[ix[0]]]
        agg = stored.get(item_pk)
        if agg is None:
            if computed_here >= MAX_MAPS_COMPUTED:
                continue
            computed_here += 1
            _, w, h, _ = items[item_pk]
            geom = RasterGeometry(w, h, campaign.heatmap_width, campaign.heatmap_height, campaign.radius_fraction)
            agg = {}
            for kind, field_i in ((k, 3 + n_s + j) for j, (k, _) in enumerate(MAP_KINDS)):
                ag = map_agreement(rater_masks([rows[i][field_i] for i in ix], geom))
                agg[f"{kind}_iou"], agg[f"{kind}_cc"] = ag.iou, ag.cc
        for kind, _ in MAP_KINDS:
            for m in ("iou", "cc"):
                v = agg[f"{kind}_{m}"]
                if v is not None:
                    map_vals[kind][m].append(v)
        if agg["implausibility_iou"] is not None:
            per_item_iou[item_pk] = agg["implausibility_iou"]
    heatmaps = {
        kind: {m: _nan_to_none(np.mean(vals)) if vals else None for m, vals in d.items()} | {"n_items": len(d["iou"])}
        for kind, d in map_vals.items()
    }
    heatmaps["computed_without_aggregate"] = computed_here

    # ---- per rater
    bias, corr, _ = st.rater_bias_and_consensus(table)
    disagree, counted = st.word_majority_disagreement(table)
    users = dict(get_user_model().objects.filter(pk__in=rater_ids).values_list("pk", "username"))
    raters = []
    for r, pk in enumerate(rater_ids):
        mine = table.rater == r
        n_points = [len(rows[i][3 + n_s]) + len(rows[i][4 + n_s]) for i in np.nonzero(mine)[0]]
        raters.append(
            {
                "rater_id": pk,
                "username": users.get(pk, str(pk)),
                "annotations": int(mine.sum()),
                "median_time_s": _nan_to_none(np.median(times[mine]) / 1000.0) if mine.any() else None,
                "mean_points": _nan_to_none(np.mean(n_points)) if n_points else None,
                "bias": {name: _nan_to_none(bias[r, s]) for s, name in enumerate(SCORE_FIELDS)},
                "consensus_corr": _nan_to_none(corr[r]),
                "word_disagreement": _nan_to_none(disagree[r] / counted[r]) if counted[r] else None,
                "word_items": int(counted[r]),
            }
        )
    metrics = {f"bias_{name}": [x["bias"][name] for x in raters] for name in SCORE_FIELDS}
    metrics["consensus_corr"] = [x["consensus_corr"] for x in raters]
    metrics["word_disagreement"] = [x["word_disagreement"] for x in raters]
    metrics["median_time_s"] = [x["median_time_s"] for x in raters]
    zs = {m: st.modified_z(v, min_mad=_min_mad(m, v)) for m, v in metrics.items()}
    for r, row in enumerate(raters):
        row["z"] = {m: _nan_to_none(z[r]) for m, z in zs.items()}
        row["outlier_metrics"] = [m for m, z in zs.items() if z[r] is not None and abs(z[r]) > st.OUTLIER_Z]
        row["outlier"] = bool(row["outlier_metrics"])

    # ---- worst items: largest mean maxdiff over the four scores, then lowest word unanimity
    worst = []
    with np.errstate(invalid="ignore"):
        mean_maxdiff = maxdiff_by_item.mean(axis=1)  # every score is present for a multi-rater item
    for ix in multi:
        it = int(table.item[ix[0]])
        item_pk = item_ids[it]
        n_words = len(items[item_pk][0])
        if n_words:
            votes = word_marks[ix[0]].astype(np.int64)
            for i in ix[1:]:
                votes += word_marks[i]
            unanimity = int(((votes == 0) | (votes == len(ix))).sum()) / n_words
        else:
            unanimity = 1.0
        worst.append((float(mean_maxdiff[it]), -unanimity, item_pk, len(ix), unanimity))
    worst.sort(key=lambda t: (-t[0], -t[1], t[2]))
    worst_items = [
        {
            "item_id": item_pk,
            "prompt": items[item_pk][3][:200],
            "n_raters": n,
            "mean_maxdiff": round(md, 4),
            "maxdiff": {
                name: _nan_to_none(maxdiff_by_item[item_index[item_pk], s]) for s, name in enumerate(SCORE_FIELDS)
            },
            "word_unanimity": round(un, 4),
            "implausibility_iou": _nan_to_none(per_item_iou.get(item_pk)),
        }
        for md, _, item_pk, n, un in worst[:WORST_ITEMS]
    ]

    open_requests = set(extra_rater_open_item_ids(campaign_id=campaign.pk))
    for row in worst_items:
        row["extra_rater_requested"] = row["item_id"] in open_requests

    return {
        "version": STATS_VERSION,
        "extra_rater_requests_open": len(open_requests),
        "campaign": {"id": campaign.pk, "name": campaign.name, "raters_per_item": campaign.raters_per_item},
        "progress": {
            "items_total": progress.items_total,
            "items_complete": progress.items_complete,
            "items_in_progress": progress.items_in_progress,
            "items_untouched": progress.items_untouched,
            "annotations": len(rows),
            "raters": len(rater_ids),
            "active_raters": active_raters,
            "active_days": ACTIVE_DAYS,
            "median_time_s": _nan_to_none(pystats.median(times.tolist()) / 1000.0) if len(rows) else None,
            "per_day": [{"day": d["day"].isoformat(), "n": d["n"]} for d in per_day],
        },
        "scores": score_blocks,
        "words": {
            "fleiss_kappa": _nan_to_none(kappa),
            "ci_low": _nan_to_none(kappa_low),
            "ci_high": _nan_to_none(kappa_high),
            "n_units": int(len(fleiss_table)),
            "n_items": int(word_groups.max()) + 1 if len(word_groups) else 0,
            "raters_per_unit": k_words,
        },
        "heatmaps": heatmaps,
        "raters": raters,
        "worst_items": worst_items,
        "methods": {
            "alpha_level": ALPHA_LEVEL,
            "bootstrap": {"resamples": N_BOOT, "seed": BOOT_SEED, "confidence": 0.95, "over": "items"},
            "outlier_rule": f"modified z-score |z| > {st.OUTLIER_Z} (median/MAD over raters)",
            "paper": {"perfect_share": st.PAPER_PERFECT_SHARE, "good_share": st.PAPER_GOOD_SHARE},
        },
    }


def campaign_stats_recompute(*, campaign_id: int) -> CampaignStats:
    """Recompute and upsert the cache row of a campaign (idempotent: overwrite, never add).

    The reads run outside a transaction (seconds for a large campaign, and nothing is written
    meanwhile); only the upsert is atomic."""
    campaign = Campaign.objects.get(pk=campaign_id)
    started = time.perf_counter()
    extra_rater_requests_settle(campaign_id=campaign.pk)
    payload = campaign_stats_compute(campaign=campaign)
    elapsed = time.perf_counter() - started
    stats, _ = CampaignStats.objects.update_or_create(  # atomic on its own
        campaign=campaign,
        defaults={
            "version": STATS_VERSION,
            "payload": payload,
            "n_annotations": payload["progress"]["annotations"],
            "computed_at": timezone.now(),
            "compute_seconds": round(elapsed, 3),
            "refresh_requested_at": None,
        },
    )
    return stats


def campaign_stats_request_refresh(*, campaign: Campaign) -> CampaignStats:
    """Mark the cache as refreshing and enqueue the recompute after the commit.

    A refresh already pending for less than REFRESH_DEDUPE is not enqueued again, so a lead
    clicking repeatedly does not pile up identical recomputes (the row lock serialises clicks).
    """
    from ..tasks import recompute_campaign_stats

    now = timezone.now()
    with transaction.atomic():
        stats, created = CampaignStats.objects.select_for_update().get_or_create(
            campaign=campaign, defaults={"version": STATS_VERSION, "payload": {}}
        )
        if stats.refresh_requested_at and now - stats.refresh_requested_at < REFRESH_DEDUPE:
            return stats
        stats.refresh_requested_at = now
        stats.save(update_fields=["refresh_requested_at"])
        transaction.on_commit(lambda: recompute_campaign_stats.delay(campaign.pk))
    return stats
