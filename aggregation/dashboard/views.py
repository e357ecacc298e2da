"""The dashboard pages. They read only the cache row (one query), so an 18,000-item campaign
loads as fast as a small one; the charts are drawn in the browser from the embedded payload."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from annotation.models import Campaign, Item
from modeling.protocol import MAP_KINDS, SCORE_NAMES
from richhf_site import roles

from . import selectors
from .apis import stats_envelope, stats_freshness


def _require_lead(request: HttpRequest) -> None:
    if not roles.is_lead_or_admin(request.user):
        raise PermissionDenied("The agreement dashboard is for project leads and admins.")


@login_required
def campaign_dashboard(request: HttpRequest, campaign_id: int) -> HttpResponse:
    _require_lead(request)
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    stats = selectors.campaign_stats_get(campaign=campaign)
    freshness = stats_freshness(campaign=campaign, stats=stats)
    config = {
        "envelope": stats_envelope(stats) if stats else None,
        # One indexed count, so the page can say how stale the cached figures are; when they
        # are, the page enqueues a refresh on open and polls "freshness" until it is done.
        "annotations_now": freshness["n_annotations_now"],
        "freshness": freshness,
        "poll_ms": getattr(settings, "RICHHF_DASHBOARD_POLL_MS", 5000),
        # The payload's keys come back from jsonb in its own order; the page lays them out in these.
        "score_names": list(SCORE_NAMES),
        "map_kinds": list(MAP_KINDS),
        "urls": {
            "stats": reverse("dashboard:api-stats", args=[campaign.pk]),
            "csv": reverse("dashboard:api-stats-csv", args=[campaign.pk]),
            "refresh": reverse("dashboard:api-refresh", args=[campaign.pk]),
            "freshness": reverse("dashboard:api-freshness", args=[campaign.pk]),
            "item": reverse("dashboard:item", args=[0]),
        },
    }
    return render(request, "dashboard/campaign.html", {"campaign": campaign, "config": config})


@login_required
def item_compare(request: HttpRequest, item_id: int) -> HttpResponse:
    _require_lead(request)
    item = get_object_or_404(Item.objects.select_related("campaign"), pk=item_id)
    config = {
        "score_names": list(SCORE_NAMES),
        "urls": {
            "item": reverse("dashboard:api-item", args=[item.pk]),
            "extra_rater": reverse("dashboard:api-extra-rater", args=[item.pk]),
            "dashboard": reverse("dashboard:campaign", args=[item.campaign_id]),
        },
    }
    return render(request, "dashboard/item.html", {"item": item, "config": config})
