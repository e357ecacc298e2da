"""A lead's request for one more rater on an item.

What it does, exactly:
- records an ExtraRaterRequest row (one open request per item, enforced by the database), with
  the item's annotation count and priority at the time;
- calls annotation.services.item_request_extra_rater, which raises the item's own rater target
  (Item.extra_raters += 1) and clears completed_at, so the lease engine offers it again to a
  rater who has not seen it; when the extra answer arrives the item completes again and its
  aggregate is recomputed from all answers;
  and raises its priority above every other item of the campaign, so it is offered first.

A request is settled (open -> fulfilled) as soon as the item has more annotations than when it
was made: the item_completed hook (the extra answer completes the item again) settles it on the
spot, and each dashboard recompute settles any the hook missed. Then a new one may be made.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Count, F

from annotation.models import Item
from annotation.services import item_request_extra_rater
from richhf_site.errors import Conflict

from ..models import ExtraRaterRequest


@transaction.atomic
def extra_rater_request(*, item_id: int, requested_by, reason: str = "") -> ExtraRaterRequest:
    """Record the request; annotation raises the item's rater target and priority.

    Conflict (409) if one is already open; the database's one-open-request-per-item constraint
    decides between two leads clicking at once.
    """
    item = Item.objects.get(pk=item_id)
    if ExtraRaterRequest.objects.filter(item=item, status=ExtraRaterRequest.Status.OPEN).exists():
        raise Conflict("An extra rater is already requested for this item.")
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
    item_request_extra_rater(item_id=item.pk)
    return request


def extra_rater_requests_settle(*, campaign_id: int | None = None, item_id: int | None = None) -> int:
    """Mark open requests (of a campaign, or of one item) fulfilled once their item has more
    annotations than when asked.

    Safe to repeat: it reads counts and only moves open -> fulfilled. Returns how many moved."""
    if (campaign_id is None) == (item_id is None):
        raise ValueError("give exactly one of campaign_id and item_id")
    scope = {"item__campaign_id": campaign_id} if campaign_id is not None else {"item_id": item_id}
    done = (
        ExtraRaterRequest.objects.filter(**scope, status=ExtraRaterRequest.Status.OPEN)
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
