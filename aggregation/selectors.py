"""Reads of the aggregation domain."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import Campaign

from .models import ItemAggregate
from .services.aggregates import settings_fingerprint


def aggregate_for_item(*, item_id: int) -> ItemAggregate | None:
    return ItemAggregate.objects.select_related("item", "item__campaign").filter(item_id=item_id).first()


def aggregates_of_campaign(*, campaign: Campaign) -> QuerySet[ItemAggregate]:
    return (
        ItemAggregate.objects.filter(item__campaign=campaign)
        .select_related("item", "item__campaign")
        .order_by("item_id")
    )


def aggregate_is_current(aggregate: ItemAggregate) -> bool:
    return aggregate.settings_fingerprint == settings_fingerprint(aggregate.item.campaign)
