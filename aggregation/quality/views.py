"""The leads' rater-quality page: server-rendered shell, figures drawn by static/quality/quality.js
from the JSON API (no inline script or style: CSP is strict)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from annotation.models import Campaign
from richhf_site import roles


@login_required
def quality_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    if not roles.is_lead_or_admin(request.user):
        raise PermissionDenied("Rater quality control is for project leads and admins.")
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    args = [campaign.pk]
    config = {
        "campaign": campaign.pk,
        "is_admin": roles.is_admin(request.user),
        "urls": {
            "summary": reverse("quality:api-summary", args=args),
            "history": reverse("quality:api-history", args=args),
            "audit": reverse("quality:api-audit", args=args),
            "run": reverse("quality:api-run", args=args),
            "pause": reverse("quality:api-pause", args=args),
            "resume": reverse("quality:api-resume", args=args),
            "exclude": reverse("quality:api-exclude", args=args),
            # The action id replaces the 0.
            "undo": reverse("quality:api-undo", args=[campaign.pk, 0]),
            "apply": reverse("quality:api-apply", args=[campaign.pk, 0]),
            "dismiss": reverse("quality:api-dismiss", args=[campaign.pk, 0]),
            "dashboard": reverse("dashboard:campaign", args=args),
            "item": reverse("dashboard:item", args=[0]),
        },
    }
    return render(request, "quality/page.html", {"campaign": campaign, "config": config})
