"""Quality-control actions on annotation's own rows: pause a rater, exclude answers, and undo.

Quality control (aggregation/quality) decides; these services write annotation's tables, so
annotation stays the only app that writes them. Nothing is deleted: an excluded answer keeps
its row with excluded_at and the reason, and stops counting toward k and toward aggregates.

Locking protocol, on top of annotation/services.py's:
- a pause holds the rater's RaterStatus row lock, then updates the rater's live leases (each
  row lock in turn): a submit that holds the assignment lock first commits before the pause
  can release the lease; one that comes after reads the pause and gets a 409;
- an exclusion locks the affected items' rows in id order (the lock every count of an item's
  assignments is made under), so two leads excluding the same answers at once change each
  answer once and the recount is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import hooks
from .models import Annotation, Assignment, AssignmentState, Campaign, Draft, Item, RaterStatus
from .services import item_recount_submitted

REASON_MAX = 500


@dataclass(frozen=True)
class PauseResult:
    changed: bool  # False: the rater was already paused (or not paused, for a resume)
    released_leases: int = 0


def _status_locked(*, campaign: Campaign, rater) -> RaterStatus:
    status, _ = RaterStatus.objects.get_or_create(campaign=campaign, rater=rater)
    return RaterStatus.objects.select_for_update().get(pk=status.pk)


@transaction.atomic
def rater_pause(*, campaign: Campaign, rater, reason: str, now=None) -> PauseResult:
    """Stops a rater in a campaign: no new leases, and their live leases (with their drafts)
    are released at once so other raters can take the items. Idempotent: pausing a paused
    rater changes nothing. Holds the rater's RaterStatus row lock."""
    now = now or timezone.now()
    status = _status_locked(campaign=campaign, rater=rater)
    if status.paused_at is not None:
        return PauseResult(changed=False)
    status.paused_at = now
    status.paused_reason = reason.strip()[:REASON_MAX]
    status.save(update_fields=["paused_at", "paused_reason", "updated_at"])
    live = Assignment.objects.filter(
        rater=rater, item__campaign=campaign, state=AssignmentState.LEASED, expires_at__gt=now
    )
    ids = list(live.select_for_update(of=("self",)).values_list("pk", flat=True))
    Draft.objects.filter(assignment_id__in=ids).delete()
    released = Assignment.objects.filter(pk__in=ids, state=AssignmentState.LEASED).update(
        state=AssignmentState.EXPIRED, finished_at=now, expires_at=now
    )
    return PauseResult(changed=True, released_leases=released)


@transaction.atomic
def rater_resume(*, campaign: Campaign, rater) -> PauseResult:
    """Lets a paused rater lease again. Idempotent. Holds the RaterStatus row lock."""
    status = _status_locked(campaign=campaign, rater=rater)
    if status.paused_at is None:
        return PauseResult(changed=False)
    status.paused_at = None
    status.paused_reason = ""
    status.save(update_fields=["paused_at", "paused_reason", "updated_at"])
    return PauseResult(changed=True)


def _recount_items(item_ids: Iterable[int], *, now) -> list[int]:
    """Recounts each item's counting answers under its row lock (held by the caller): an item
    that fell below its k reopens, so the queue offers it to replacement raters; one back at k
    completes through item_recount_submitted (the item_completed hook after commit). Returns
    the items that did not complete here: their aggregates still need recomputing."""
    not_completed = []
    for item in Item.objects.filter(pk__in=sorted(set(item_ids))).select_related("campaign").order_by("pk"):
        if item.is_gold:  # never counts toward k, never completes
            continue
        if item_recount_submitted(item=item, now=now):
            continue  # item_completed aggregates it: no second request
        not_completed.append(item.pk)
        if item.completed_at is not None and item.n_submitted < item.raters_wanted:
            item.completed_at = None
            item.save(update_fields=["completed_at"])
    return not_completed


def _lock_items(item_ids: Iterable[int]) -> None:
    list(Item.objects.select_for_update().filter(pk__in=sorted(set(item_ids))).order_by("pk").values_list("pk"))


def _annotations_set_excluded(*, annotation_ids: Iterable[int], excluded_at, reason: str, now) -> list[int]:
    """Sets (excluded_at given) or clears (None) the exclusion of the answers not already in
    that state, recounts their items and, after commit, tells aggregation through the
    item_answers_changed hook. Returns the ids this call changed. Holds the items' row locks
    (id order)."""
    ids = sorted(set(annotation_ids))
    item_ids = list(Annotation.objects.filter(pk__in=ids).values_list("item_id", flat=True).distinct())
    _lock_items(item_ids)
    changed = list(
        Annotation.objects.filter(pk__in=ids, excluded_at__isnull=excluded_at is not None)
        .order_by("pk")
        .values_list("pk", "item_id")
    )
    if not changed:
        return []
    Annotation.objects.filter(pk__in=[pk for pk, _ in changed]).update(excluded_at=excluded_at, excluded_reason=reason)
    recompute = _recount_items({item_id for _, item_id in changed}, now=now)
    if recompute:
        transaction.on_commit(lambda: hooks.item_answers_changed_send(item_ids=recompute))
    return [pk for pk, _ in changed]


@transaction.atomic
def annotations_exclude(*, annotation_ids: Iterable[int], reason: str, now=None) -> list[int]:
    """Marks the given answers excluded with the reason; returns the ids this call changed
    (already excluded ones are left as they are). Their items are recounted: an item that
    falls below k goes back to the queue, and aggregation recomputes it from the answers that
    remain. Gold items' answers can be excluded too; they never count toward k."""
    now = now or timezone.now()
    return _annotations_set_excluded(
        annotation_ids=annotation_ids, excluded_at=now, reason=reason.strip()[:REASON_MAX], now=now
    )


@transaction.atomic
def annotations_include(*, annotation_ids: Iterable[int], now=None) -> list[int]:
    """Undoes an exclusion: the answers count again. Returns the ids this call changed.

    An item that completed meanwhile with a replacement answer simply holds k+1 answers, all
    of which the aggregate uses (as after "request an extra rater"); an item still in the
    queue completes again if the re-included answer brings it back to k."""
    return _annotations_set_excluded(
        annotation_ids=annotation_ids, excluded_at=None, reason="", now=now or timezone.now()
    )
