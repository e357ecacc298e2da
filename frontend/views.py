"""Server-rendered pages. The annotation page itself is a static shell; its data comes from the
rater API (/api/...), so the browser only ever sees what that API lets a rater see."""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from annotation import selectors
from annotation.models import Annotation, Campaign
from modeling.protocol import SCORE_NAMES
from richhf_site import auth, roles
from richhf_site.errors import ApplicationError
from richhf_site.markdown import render_markdown

HISTORY_PAGE_SIZE = 20


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
    # A rater's own progress per campaign they rate in (two queries, whatever their number).
    progress = (
        {row.campaign.pk: row for row in selectors.rater_campaigns_progress(rater=request.user)} if is_rater else {}
    )
    return render(
        request,
        "frontend/home.html",
        {
            "campaigns": [(campaign, progress.get(campaign.pk)) for campaign in campaigns],
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
            # PUT/GET/DELETE the lease's draft (issue 15); 0 stands for the assignment id, as above.
            "draft": reverse("api:draft", args=[0]),
            "history": reverse("history"),
            "home": reverse("home") + "?list",
        },
    }
    context = {"campaign": campaign, "config": config, "guidelines_html": guidelines_html(campaign)}
    return render(request, "frontend/annotate.html", context)


def guidelines_html(campaign: Campaign, language: str | None = None) -> str:
    """The campaign's guidelines in the rater's language as safe HTML: the translation for the
    active language (or its generic form, "zh" for "zh-hans"), else the default guidelines."""
    language = (language or translation.get_language() or "").lower()
    translations = {str(code).lower(): text for code, text in (campaign.guidelines_translations or {}).items()}
    for code in (language, language.split("-")[0]):
        text = translations.get(code)
        if isinstance(text, str) and text.strip():
            return render_markdown(text)
    return render_markdown(campaign.guidelines or "")


@login_required
def history(request: HttpRequest) -> HttpResponse:
    """The caller's own past answers, newest first, paged; ?campaign=<id> narrows to one."""
    answers = selectors.answers_of_rater(rater=request.user)
    campaign_id = request.GET.get("campaign", "")
    campaign = None
    if campaign_id:
        if not campaign_id.isdigit():
            raise Http404(_("No such campaign among yours."))
        campaign = selectors.campaign_for_rater(user=request.user, campaign_id=int(campaign_id))
        if campaign is None:
            raise Http404(_("No such campaign among yours."))
        answers = answers.filter(item__campaign=campaign)
    page = Paginator(answers, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(answer, _answer_view(answer)) for answer in page.object_list]
    return render(request, "frontend/history.html", {"page": page, "rows": rows, "campaign": campaign})


@login_required
def history_answer(request: HttpRequest, annotation_id: int) -> HttpResponse:
    """One of the caller's answers, read-only, drawn over the image. Anyone else's is a 404."""
    answer = selectors.answer_of_rater(rater=request.user, annotation_id=annotation_id)
    if answer is None:
        raise Http404(_("No such answer among yours."))
    seconds = round(answer.time_spent_ms / 1000)
    context = {"answer": answer, "view": _answer_view(answer), "time_spent": f"{seconds // 60}:{seconds % 60:02d}"}
    return render(request, "frontend/history_answer.html", context)


@dataclass(frozen=True)
class Disk:
    """A point as the rater saw it: centre and true radius in the image's own pixels."""

    kind: str
    cx: float
    cy: float
    r: float
    dot: float  # the centre mark


@dataclass(frozen=True)
class AnswerView:
    disks: list[Disk]
    words: list[tuple[str, bool]]
    scores: list[tuple[str, str, int]]
    n_implausible: int
    n_misaligned: int


def _score_labels() -> dict[str, str]:
    return {
        "plausibility": _("Plausibility"),
        "alignment": _("Alignment"),
        "aesthetics": _("Aesthetics"),
        "overall": _("Overall"),
    }


def _answer_view(answer: Annotation) -> AnswerView:
    item = answer.item
    # The rater's disk: radius_fraction of the image height (the rater page's true scale).
    r = answer.item.campaign.radius_fraction * item.height
    dot = max(item.height / 160, 1.0)
    disks = [
        Disk(kind, x * item.width, y * item.height, r, dot)
        for kind, points in (("implausible", answer.implausible_points), ("misaligned", answer.misaligned_points))
        for x, y in points
    ]
    chosen = set(answer.misaligned_words)
    labels = _score_labels()
    return AnswerView(
        disks=disks,
        words=[(word, i in chosen) for i, word in enumerate(item.words)],
        scores=[(name, labels[name], getattr(answer, name)) for name in SCORE_NAMES],
        n_implausible=len(answer.implausible_points),
        n_misaligned=len(answer.misaligned_points),
    )


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
