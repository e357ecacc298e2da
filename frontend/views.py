"""Server-rendered pages. The annotation page itself is a static shell; its data comes from the
rater API (/api/...), so the browser only ever sees what that API lets a rater see."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from annotation import selectors
from richhf_site import auth, roles
from richhf_site.errors import ApplicationError


@login_required
def home(request: HttpRequest) -> HttpResponse:
    campaigns = list(selectors.campaigns_for_user(user=request.user))
    is_rater = roles.is_rater(request.user)
    is_lead = roles.is_lead_or_admin(request.user)
    # A rater with a single campaign has nothing to choose: straight to work. "?list" keeps
    # the list reachable (the annotation page links back to it).
    if is_rater and not is_lead and len(campaigns) == 1 and "list" not in request.GET:
        return redirect("annotate", campaign_id=campaigns[0].pk)
    return _home_page(request, campaigns=campaigns, is_rater=is_rater, is_lead=is_lead)


def _home_page(
    request: HttpRequest, *, campaigns: list, is_rater: bool, is_lead: bool, new_key: str | None = None
) -> HttpResponse:
    # Raters' scripts are the API's main users; the section costs one query, so only they get it.
    now = timezone.now()
    tokens = (
        [
            (token, token.expires_at is not None and token.expires_at <= now)
            for token in auth.tokens_for_user(user=request.user)
        ]
        if is_rater
        else []
    )
    return render(
        request,
        "frontend/home.html",
        {
            "campaigns": campaigns,
            "is_rater": is_rater,
            "is_lead": is_lead,
            "is_admin": roles.is_admin(request.user),
            "tokens": tokens,
            "new_key": new_key,
        },
    )


@login_required
@require_POST
def token_new(request: HttpRequest) -> HttpResponse:
    """Issues an API token and shows its key on this one answer (it is stored hashed), so
    the answer is a page and not a redirect: the key never goes into a cookie or a URL."""
    name = request.POST.get("name", "").strip()[:100] or "Created on the home page"
    issued = auth.token_create(user=request.user, name=name)
    return _home_page(
        request,
        campaigns=list(selectors.campaigns_for_user(user=request.user)),
        is_rater=roles.is_rater(request.user),
        is_lead=roles.is_lead_or_admin(request.user),
        new_key=issued.key,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        auth.token_revoke(token_id=token_id, user=request.user)
    except ApplicationError as exc:  # another user's token: the same as a missing one
        raise Http404(exc.message) from exc
    return redirect(reverse("home") + "?list#api-tokens")


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
