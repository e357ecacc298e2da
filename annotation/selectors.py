"""Reads of the annotation domain. Every rater-facing selector filters by the rater."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from richhf_site import roles

from .models import Assignment, AssignmentState, Campaign, Item
from .services import active_assignment_q


def campaigns_for_user(*, user) -> QuerySet[Campaign]:
    if roles.is_lead_or_admin(user):
        return Campaign.objects.all()
    return Campaign.objects.filter(raters=user)


def campaign_for_rater(*, user, campaign_id: int) -> Campaign | None:
    return Campaign.objects.filter(pk=campaign_id, raters=user).first()


def assignments_of_rater(*, rater) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(rater=rater)
        .select_related("item", "item__campaign", "annotation")
        .order_by("-leased_at", "-id")
    )


def item_visible_to(*, user, item_id: int) -> Item | None:
    """Leads and admins see every item; a rater only items they hold or held a lease on."""
    qs = Item.objects.filter(pk=item_id)
    if not roles.is_lead_or_admin(user):
        qs = qs.filter(assignments__rater=user)
    return qs.first()


@dataclass(frozen=True)
class CampaignProgress:
    items_total: int
    items_complete: int
    items_in_progress: int
    items_untouched: int
    annotations_submitted: int
    active_leases: int


def campaign_progress(*, campaign: Campaign, now: datetime | None = None) -> CampaignProgress:
    now = now or timezone.now()
    # Gold items are not the campaign's work: they never complete, so they would never leave
    # the figures (and would tell raters how many there are).
    items = Item.objects.filter(campaign=campaign, is_gold=False)
    active = Assignment.objects.filter(item__campaign=campaign, item__is_gold=False).filter(active_assignment_q(now))
    total = items.count()
    complete = items.filter(completed_at__isnull=False).count()
    touched = items.filter(completed_at__isnull=True, pk__in=active.values("item_id")).count()
    return CampaignProgress(
        items_total=total,
        items_complete=complete,
        items_in_progress=touched,
        items_untouched=total - complete - touched,
        annotations_submitted=active.filter(state=AssignmentState.SUBMITTED).count(),
        active_leases=active.filter(state=AssignmentState.LEASED).count(),
    )


@dataclass(frozen=True)
class RaterProgress:
    done_today: int
    done_total: int
    remaining_for_me: int
    campaign_items_remaining: int


def rater_progress(*, campaign: Campaign, rater, now: datetime | None = None) -> RaterProgress:
    """What a rater may know: their own counts and how much of the campaign is left."""
    now = now or timezone.now()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Assignment.objects.filter(rater=rater, item__campaign=campaign, state=AssignmentState.SUBMITTED)
    # Counts toward k: a live lease, or an answer not excluded (services.active_assignment_q).
    active_here = Q(
        assignments__state=AssignmentState.SUBMITTED, assignments__annotation__excluded_at__isnull=True
    ) | Q(assignments__state=AssignmentState.LEASED, assignments__expires_at__gt=now)
    remaining_for_me = (
        Item.objects.filter(campaign=campaign, completed_at__isnull=True, is_gold=False)
        .annotate(n_active=Count("assignments", filter=active_here))
        .filter(n_active__lt=campaign.raters_per_item + F("extra_raters"))
        .exclude(assignments__rater=rater)
        .count()
    )
    return RaterProgress(
        done_today=mine.filter(finished_at__gte=start_of_day).count(),
        done_total=mine.count(),
        remaining_for_me=remaining_for_me,
        campaign_items_remaining=Item.objects.filter(
            campaign=campaign, completed_at__isnull=True, is_gold=False
        ).count(),
    )
