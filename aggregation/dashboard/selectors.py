"""Reads for the dashboard: the cache row, and one item's raw answers for the compare view."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import Annotation, Campaign, Item

from .models import CampaignStats, ExtraRaterRequest


def campaign_stats_get(*, campaign: Campaign) -> CampaignStats | None:
    return CampaignStats.objects.filter(campaign=campaign).first()


def item_annotations_for_compare(*, item: Item) -> QuerySet[Annotation]:
    return Annotation.objects.filter(item=item).select_related("rater").order_by("id")


def item_open_extra_rater_request(*, item: Item) -> ExtraRaterRequest | None:
    return ExtraRaterRequest.objects.filter(item=item, status=ExtraRaterRequest.Status.OPEN).first()
