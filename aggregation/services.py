"""Aggregation of an item's annotations (see issue "Aggregation on Celery workers")."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from annotation.models import Annotation

from .models import ItemAggregate


@transaction.atomic
def item_aggregate_upsert(*, item_id: int) -> ItemAggregate:
    """Records the hand-off from annotation: how many answers the completed item has.

    Recomputed from the raw annotations and upserted, so running it twice changes nothing.
    """
    n = Annotation.objects.filter(item_id=item_id).count()
    aggregate, _ = ItemAggregate.objects.update_or_create(
        item_id=item_id, defaults={"n_annotations": n, "computed_at": timezone.now()}
    )
    return aggregate
