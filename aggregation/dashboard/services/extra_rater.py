"""A lead's request for one more rater on an item.

What it does, exactly (annotation/ is not this app's to change):
- records an ExtraRaterRequest row (one open request per item, enforced by the database);
- raises Item.priority above every other item of the campaign, so that whenever the item is
  leasable it is offered before any other new item.

What it cannot do on its own: the lease engine (annotation.services._queue) offers an item only
while it has fewer than Campaign.raters_per_item active assignments and completed_at is null.
A complete item with k annotations is therefore not re-offered by clearing completed_at alone,
and clearing it would also tell aggregation the item is unfinished. So completed_at is left as
is; the open requests are listed for the annotation engine to honour (a per-item rater target
is the engine change needed) and the priority bump takes effect as soon as it does.

Each dashboard recompute settles open requests: once the item has more annotations than when
the request was made, the request becomes "fulfilled" and a new one may be made.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max

from annotation.errors import Conflict
from annotation.models import Item

from ..models import ExtraRaterRequest


@transaction.atomic
def extra_rater_request(*, item_id: int, requested_by, reason: str = "") -> ExtraRaterRequest:
    """Record the request and bump the item's priority. Conflict (409) if one is already open.

    Locks the item row so two leads clicking at once cannot both compute the same "max + 1".
    """
    item = Item.objects.select_for_update().get(pk=item_id)
    if ExtraRaterRequest.objects.filter(item=item, status=ExtraRaterRequest.Status.OPEN).exists():
        raise Conflict("An extra rater is already requested for this item.")
    top = Item.objects.filter(campaign_id=item.campaign_id).aggregate(m=Max("priority"))["m"] or 0.0
    try:
        with transaction.atomic():
            request = ExtraRaterRequest.objects.create(
                item=item,
                requested_by=requested_by,
                n_annotations_at_request=item.annotations.count(),
                previous_priority=item.priority,
                reason=reason[:500],
            )
    except IntegrityError as exc:  # a concurrent request won the unique constraint
        raise Conflict("An extra rater is already requested for this item.") from exc
    Item.objects.filter(pk=item.pk).update(priority=max(top, item.priority) + 1.0)
    return request


def extra_rater_requests_settle(*, campaign_id: int) -> int:
    """Mark open requests fulfilled once their item has more annotations than when asked.

    Safe to repeat: it reads counts and only moves open -> fulfilled. Returns how many moved."""
    done = (
        ExtraRaterRequest.objects.filter(item__campaign_id=campaign_id, status=ExtraRaterRequest.Status.OPEN)
        .annotate(n_now=Count("item__annotations"))
        .filter(n_now__gt=F("n_annotations_at_request"))
        .values_list("pk", flat=True)
    )
    return ExtraRaterRequest.objects.filter(pk__in=list(done)).update(status=ExtraRaterRequest.Status.FULFILLED)


def extra_rater_open_item_ids(*, campaign_id: int) -> list[int]:
    return sorted(
        ExtraRaterRequest.objects.filter(
            item__campaign_id=campaign_id, status=ExtraRaterRequest.Status.OPEN
        ).values_list("item_id", flat=True)
    )
