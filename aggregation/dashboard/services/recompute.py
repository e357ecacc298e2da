"""Rebuilds a campaign's dashboard payload from its raw annotations and upserts the cache row.

Nothing is incremented: every figure is recomputed from Annotation rows (and, for heatmap
agreement, from ItemAggregate rows where they are current enough to exist), so running the
task twice gives the same payload. The page and the API only read CampaignStats.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from annotation.models import Campaign
from annotation.selectors import campaign_progress
from modeling.protocol import SCORE_NAMES
from richhf_site.faults import BrokerUnavailable, task_publish

from ..models import CampaignStats
from ..selectors import (
    campaign_answer_table,
    campaign_answers_per_day,
    campaign_generator_data,
    campaign_stored_map_agreement,
    user_names,
)
from . import sections
from .extra_rater import extra_rater_open_item_ids, extra_rater_requests_settle
from .generators import generators_section

STATS_VERSION = 2  # 2: gold items and excluded answers left out; the generators section
REFRESH_DEDUPE = timedelta(minutes=2)
# Items without a stored aggregate get their heatmap agreement computed here; bounded so a
# campaign whose aggregation lags cannot make the recompute arbitrarily slow.
MAX_MAPS_COMPUTED = 400


Stage = Callable[[str, float], None]


def _no_stage(stage: str, progress: float) -> None:
    return None


def campaign_stats_compute(*, campaign: Campaign, on_stage: Stage = _no_stage) -> dict:
    """The whole payload for one campaign (pure read; no writes): the selectors read, and each
    section is computed by its own pure function in services/sections.py. on_stage(stage,
    progress) is told where the computation is (the recompute records it for the page)."""
    now = timezone.now()
    on_stage("reading answers", 0.05)
    table = campaign_answer_table(campaign=campaign)
    maxdiff = sections.item_maxdiff(table)
    on_stage("heatmap agreement", 0.25)
    agreement = sections.item_map_agreement(
        table=table,
        stored=campaign_stored_map_agreement(campaign=campaign),
        heatmap_size=(campaign.heatmap_width, campaign.heatmap_height),
        radius_fraction=campaign.radius_fraction,
        limit=MAX_MAPS_COMPUTED,
    )
    open_requests = set(extra_rater_open_item_ids(campaign_id=campaign.pk))
    on_stage("scores and raters", 0.5)
    payload = {
        "version": STATS_VERSION,
        "extra_rater_requests_open": len(open_requests),
        "campaign": {"id": campaign.pk, "name": campaign.name, "raters_per_item": campaign.raters_per_item},
        "progress": sections.progress_section(
            table=table,
            progress=campaign_progress(campaign=campaign, now=now),
            per_day=campaign_answers_per_day(campaign=campaign),
            now=now,
        ),
        "scores": {name: sections.score_section(table=table, name=name, maxdiff=maxdiff[name]) for name in SCORE_NAMES},
        "words": sections.words_section(table=table),
        "heatmaps": sections.heatmaps_section(agreement=agreement),
        "raters": sections.raters_section(table=table, usernames=user_names(user_ids=table.rater_ids.tolist())),
        "worst_items": sections.worst_items_section(
            table=table, maxdiff=maxdiff, agreement=agreement, open_requests=open_requests
        ),
        "methods": sections.methods_section(),
    }
    on_stage("generators", 0.8)
    payload["generators"] = generators_section(campaign_generator_data(campaign=campaign))
    return payload


def campaign_stats_recompute(*, campaign_id: int) -> CampaignStats:
    """Recompute and upsert the cache row of a campaign (idempotent: overwrite, never add).

    The reads run outside a transaction (seconds for a large campaign, and nothing is written
    meanwhile); only the upsert is atomic."""
    campaign = Campaign.objects.get(pk=campaign_id)
    started = time.perf_counter()
    extra_rater_requests_settle(campaign_id=campaign.pk)

    def on_stage(stage: str, progress: float) -> None:
        # A plain UPDATE, no lock: only the page reads these two fields.
        CampaignStats.objects.filter(campaign=campaign).update(refresh_stage=stage, refresh_progress=progress)

    payload = campaign_stats_compute(campaign=campaign, on_stage=on_stage)
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
            "refresh_progress": 1.0,
            "refresh_stage": "done",
        },
    )
    return stats


def campaign_stats_request_refresh(*, campaign: Campaign) -> CampaignStats:
    """Mark the cache as refreshing and enqueue the recompute after the commit.

    A refresh already pending for less than REFRESH_DEDUPE is not enqueued again, so a lead
    clicking repeatedly does not pile up identical recomputes (the row lock serialises clicks).

    Broker unreachable: the mark is taken back and BrokerUnavailable (503) raised, so the page
    does not show "refreshing" for a recompute nobody will run, and the next click tries again.
    """
    from ..tasks import recompute_campaign_stats

    now = timezone.now()
    with transaction.atomic():
        stats, created = CampaignStats.objects.select_for_update().get_or_create(
            campaign=campaign, defaults={"version": STATS_VERSION, "payload": {}}
        )
        if stats.refresh_requested_at and now - stats.refresh_requested_at < REFRESH_DEDUPE:
            return stats
        previous = stats.refresh_requested_at
        stats.refresh_requested_at = now
        stats.refresh_progress = 0.0
        stats.refresh_stage = "queued"
        stats.save(update_fields=["refresh_requested_at", "refresh_progress", "refresh_stage"])

        def enqueue() -> None:
            try:
                task_publish(recompute_campaign_stats, campaign.pk)
            except BrokerUnavailable:
                # Only our own mark: a recompute that finished meanwhile has cleared it.
                CampaignStats.objects.filter(pk=stats.pk, refresh_requested_at=now).update(
                    refresh_requested_at=previous
                )
                raise

        transaction.on_commit(enqueue)
    return stats
