"""Reads of the annotation domain. Every rater-facing selector filters by the rater."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from richhf_site import roles

from .models import Annotation, Assignment, AssignmentState, Campaign, Draft, Item
from .services import active_assignment_q, active_count_subquery


def campaigns_for_user(*, user) -> QuerySet[Campaign]:
    if roles.is_lead_or_admin(user):
        return Campaign.objects.all()
    return Campaign.objects.filter(raters=user)


def campaign_for_rater(*, user, campaign_id: int) -> Campaign | None:
    return Campaign.objects.filter(pk=campaign_id, raters=user).first()


def assignments_of_rater(*, rater) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(rater=rater)
        .select_related("item", "item__campaign", "annotation", "draft")
        .order_by("-leased_at", "-id")
    )


def draft_of_rater(*, rater, assignment_id: int, now: datetime | None = None) -> Draft | None:
    """The caller's draft of their own live lease; None for anyone else's, or once the lease
    ended (a draft never outlives its lease, even before the sweeper deletes it)."""
    now = now or timezone.now()
    return Draft.objects.filter(
        assignment_id=assignment_id,
        assignment__rater=rater,
        assignment__state=AssignmentState.LEASED,
        assignment__expires_at__gt=now,
    ).first()


def answers_of_rater(*, rater) -> QuerySet[Annotation]:
    """The rater's own submitted answers, newest first, with item and campaign (their history)."""
    return (
        Annotation.objects.filter(rater=rater).select_related("item", "item__campaign").order_by("-created_at", "-id")
    )


def answer_of_rater(*, rater, annotation_id: int) -> Annotation | None:
    """One of the rater's own answers; None for another rater's (the page answers 404 alike)."""
    return answers_of_rater(rater=rater).filter(pk=annotation_id).first()


@dataclass(frozen=True)
class RaterCampaignProgress:
    """One campaign on a rater's home: how many items they answered of those open to them."""

    campaign: Campaign
    done: int
    available: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.available) if self.available else 0


def rater_campaigns_progress(*, rater, now: datetime | None = None) -> list[RaterCampaignProgress]:
    """Progress per campaign of the rater, in two queries whatever the number of campaigns.

    done = items this rater answered; available = done + the items they could still get (not
    complete, not touched by them, a free slot counted as the queue counts it) + their live
    leases. Gold items are left out, as they are out of every count a rater sees.
    """
    now = now or timezone.now()
    campaigns = list(Campaign.objects.filter(raters=rater).order_by("name"))
    if not campaigns:
        return []
    ids = [c.pk for c in campaigns]
    n_active = active_count_subquery(now)
    mine = Assignment.objects.filter(item=OuterRef("pk"), rater=rater)
    rows = (
        Item.objects.filter(campaign_id__in=ids, is_gold=False)
        .annotate(
            n_active=n_active,
            mine_submitted=Exists(mine.filter(state=AssignmentState.SUBMITTED)),
            mine_live=Exists(mine.filter(state=AssignmentState.LEASED, expires_at__gt=now)),
            mine_any=Exists(mine),
        )
        .values("campaign_id")
        .annotate(
            done=Count("pk", filter=Q(mine_submitted=True)),
            live=Count("pk", filter=Q(mine_live=True)),
            open=Count(
                "pk",
                filter=Q(
                    mine_any=False,
                    completed_at__isnull=True,
                    n_active__lt=F("campaign__raters_per_item") + F("extra_raters"),
                ),
            ),
        )
        .order_by()
    )
    counts = {row["campaign_id"]: row for row in rows}
    result = []
    for campaign in campaigns:
        row = counts.get(campaign.pk, {"done": 0, "live": 0, "open": 0})
        result.append(
            RaterCampaignProgress(
                campaign=campaign, done=row["done"], available=row["done"] + row["live"] + row["open"]
            )
        )
    return result


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
