"""The leads page: versions with their metrics over time and what the queue order is based on."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotation.models import Campaign
from richhf_site import roles

from . import selectors


def _chart_points(versions, width: int = 560, height: int = 160, pad: int = 24) -> list[dict]:
    """Chart coordinates of each finished version's combined dev metric, oldest first."""
    values = [(i, v) for i, v in enumerate(versions) if v.combined_metric is not None]
    if not values:
        return []
    metrics = [v.combined_metric for _, v in values]
    lo, hi = min(metrics), max(metrics)
    span = (hi - lo) or 1.0
    step = (width - 2 * pad) / max(len(versions) - 1, 1)
    return [
        {
            "x": round(pad + i * step, 1),
            "y": round(height - pad - (v.combined_metric - lo) / span * (height - 2 * pad), 1),
            "label": f"v{v.pk}: {v.combined_metric:.4f}",
            "label_y": round(height - pad - (v.combined_metric - lo) / span * (height - 2 * pad) - 8, 1),
        }
        for i, v in values
    ]


@login_required
def campaign_learning(request: HttpRequest, campaign_id: int) -> HttpResponse:
    if not roles.is_lead_or_admin(request.user):
        raise PermissionDenied("The learning page is for project leads and admins.")
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    versions = list(selectors.versions_for_campaign(campaign=campaign))
    points = _chart_points(versions)  # oldest first
    context = {
        "campaign": campaign,
        "versions": versions,
        "points": points,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "queue": selectors.queue_explanation(campaign=campaign),
    }
    return render(request, "learning/campaign.html", context)
