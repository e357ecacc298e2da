"""Server-rendered pages. The annotation page itself is a static shell; its data comes from the
rater API (/api/...), so the browser only ever sees what that API lets a rater see."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from annotation import selectors
from richhf_site import roles


@login_required
def home(request: HttpRequest) -> HttpResponse:
    campaigns = list(selectors.campaigns_for_user(user=request.user))
    is_rater = roles.is_rater(request.user)
    is_lead = roles.is_lead_or_admin(request.user)
    # A rater with a single campaign has nothing to choose: straight to work. "?list" keeps
    # the list reachable (the annotation page links back to it).
    if is_rater and not is_lead and len(campaigns) == 1 and "list" not in request.GET:
        return redirect("annotate", campaign_id=campaigns[0].pk)
    return render(
        request,
        "frontend/home.html",
        {
            "campaigns": campaigns,
            "is_rater": is_rater,
            "is_lead": is_lead,
            "is_admin": roles.is_admin(request.user),
        },
    )


@login_required
def annotate(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.campaign_for_rater(user=request.user, campaign_id=campaign_id)
    if campaign is None or not roles.is_rater(request.user):
        # Same answer for "no such campaign" and "not yours", like the API.
        raise Http404("No such campaign among yours.")
    config = {
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "radius_fraction": campaign.radius_fraction,
            "lease_minutes": campaign.lease_minutes,
        },
        "urls": {
            "next": reverse("api:next-item", args=[campaign.pk]),
            "progress": reverse("api:campaign-progress", args=[campaign.pk]),
            "heartbeat": reverse("api:heartbeat", args=[0]),
            "submit": reverse("api:submit", args=[0]),
            "skip": reverse("api:skip", args=[0]),
            "home": reverse("home") + "?list",
        },
    }
    return render(request, "frontend/annotate.html", {"campaign": campaign, "config": config})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
