"""The admins' pages: campaigns (settings, guidelines, raters), uploads and imports, exports.

Plain server-rendered pages in the dashboard's style. Every write goes through a service
(annotation.campaigns, richhf_site.invites; the upload and export forms post to the JSON API
of aggregation.exports, which runs them as background jobs). Roles are checked here, on the
server, for every page and every action: a rater gets 403; a lead may look at the lists and
follow jobs but may not change anything (403); an admin may do everything.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from aggregation.exports.models import ExportJob, ImportJob
from aggregation.exports.records import SPLIT_ORDER
from aggregation.exports.writers import FORMATS
from annotation import campaigns as campaign_services
from annotation.models import Campaign
from richhf_site import invites, roles
from richhf_site.errors import ApplicationError
from richhf_site.markdown import render_markdown

MAX_PREVIEW_CHARS = 100_000
MAX_INVITE_CSV_BYTES = 1_048_576


def _require_lead(request: HttpRequest) -> None:
    if not roles.is_lead_or_admin(request.user):
        raise PermissionDenied("These pages are for project leads and admins.")


def _require_admin(request: HttpRequest) -> None:
    if not roles.is_admin(request.user):
        raise PermissionDenied("Only admins may change campaigns, upload, import or export.")


def _explained_403(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A refused page says why and where to go, in the site's frame (Django's bare 403 says
    neither). Still a 403: the check is the same."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied as exc:
            return render(request, "frontend/manage/forbidden.html", {"reason": str(exc)}, status=403)

    return wrapper


def _nav(request: HttpRequest, active: str) -> dict[str, Any]:
    return {"active": active, "is_admin": roles.is_admin(request.user)}


# --------------------------------------------------------------------------- campaigns


class CampaignForm(forms.Form):
    """The editable fields of annotation.campaigns; the service checks them again."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    raters_per_item = forms.IntegerField(
        min_value=1, max_value=50, label="Raters per item (k)", help_text="Answers an item needs to be complete."
    )
    radius_fraction = forms.FloatField(
        min_value=0.001,
        max_value=0.5,
        label="Point radius (fraction of image height)",
        help_text="The paper uses 1/20 = 0.05.",
    )
    lease_minutes = forms.IntegerField(
        min_value=1, max_value=1440, help_text="How long a rater holds an item before it goes back."
    )
    show_suggestions = forms.BooleanField(required=False, label="Show model suggestions to raters")
    qualification_required = forms.BooleanField(required=False, label="New raters must qualify first")
    qualification_items = forms.IntegerField(min_value=1, max_value=100, help_text="Gold items in the qualification.")
    qualification_threshold = forms.FloatField(
        min_value=0, max_value=1, help_text="Mean quality (0..1) needed to pass."
    )
    honeypot_share = forms.FloatField(
        min_value=0, max_value=0.5, help_text="Share of leases that are gold items (0..0.5)."
    )
    guidelines = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 10}), label="Guidelines (Markdown)"
    )
    guidelines_zh_hans = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Guidelines, 简体中文 (zh-hans)",
        help_text="Empty: Chinese-speaking raters see the default guidelines.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def values(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["guidelines_translations"] = {"zh-hans": data.pop("guidelines_zh_hans") or ""}
        return data


def _form_initial(campaign: Campaign | None) -> dict[str, Any]:
    source = campaign or Campaign()
    initial = {name: getattr(source, name) for name in campaign_services.EDITABLE_FIELDS}
    initial["guidelines_zh_hans"] = (source.guidelines_translations or {}).get("zh-hans", "")
    initial.pop("guidelines_translations")
    return initial


@login_required
@_explained_403
def campaign_list(request: HttpRequest) -> HttpResponse:
    _require_lead(request)
    rows = Campaign.objects.annotate(n_items=Count("items", distinct=True), n_raters=Count("raters", distinct=True))
    return render(
        request,
        "frontend/manage/campaigns.html",
        {"campaigns": rows, "nav": _nav(request, "campaigns")},
    )


def _campaign_page(
    request: HttpRequest,
    campaign: Campaign | None,
    form: CampaignForm,
    *,
    status: int = 200,
    invite_report: campaign_services.InviteReport | None = None,
    invite_link: str | None = None,
    invite_error: str | None = None,
    saved: bool = False,
) -> HttpResponse:
    raters = list(campaign.raters.order_by("username").values_list("username", flat=True)) if campaign else []
    return render(
        request,
        "frontend/manage/campaign_edit.html",
        {
            "campaign": campaign,
            "form": form,
            "raters": raters,
            "invite_report": invite_report,
            "invite_link": invite_link,
            "invite_error": invite_error,
            "saved": saved,
            "invite_hours": settings.RICHHF_INVITE_HOURS,
            "nav": _nav(request, "campaigns"),
            "config": {"preview": reverse("manage:guidelines-preview")},
        },
        status=status,
    )


def _save(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    form = CampaignForm(request.POST)
    if not form.is_valid():
        return _campaign_page(request, campaign, form, status=400)
    try:
        if campaign is None:
            campaign = campaign_services.campaign_create(**form.values())
        else:
            campaign = campaign_services.campaign_update(campaign_id=campaign.pk, **form.values())
    except ApplicationError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _campaign_page(request, campaign, form, status=400)
    return redirect(reverse("manage:campaign-edit", args=[campaign.pk]) + "?saved=1")


@login_required
@require_http_methods(["GET", "POST"])
@_explained_403
def campaign_new(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    if request.method == "POST":
        return _save(request, None)
    return _campaign_page(request, None, CampaignForm(initial=_form_initial(None)))


@login_required
@require_http_methods(["GET", "POST"])
@_explained_403
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if request.method == "POST":
        return _save(request, campaign)
    return _campaign_page(
        request, campaign, CampaignForm(initial=_form_initial(campaign)), saved=request.GET.get("saved") == "1"
    )


@login_required
@require_POST
@_explained_403
def campaign_invite(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Existing accounts by username (a textarea, one a line) or a CSV file."""
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = CampaignForm(initial=_form_initial(campaign))
    upload = request.FILES.get("csv")
    try:
        if upload is not None:
            if upload.size > MAX_INVITE_CSV_BYTES:
                raise ApplicationError(f"{upload.name}: larger than {MAX_INVITE_CSV_BYTES:,} bytes", field="csv")
            report = campaign_services.campaign_invite_csv(
                campaign=campaign, filename=upload.name or "upload.csv", data=upload.read()
            )
        else:
            names = request.POST.get("usernames", "").replace(",", "\n").splitlines()
            report = campaign_services.campaign_invite(campaign=campaign, usernames=names)
    except ApplicationError as exc:
        return _campaign_page(request, campaign, form, status=400, invite_error=exc.message)
    return _campaign_page(request, campaign, form, invite_report=report, status=200 if not report.problems else 400)


@login_required
@require_POST
@_explained_403
def campaign_invite_link(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A new rater account and its one-time link, shown on this one answer only (a page, not a
    redirect: the token never goes into a cookie, a log line or a URL we keep)."""
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = CampaignForm(initial=_form_initial(campaign))
    try:
        issued = campaign_services.campaign_invite_new_account(
            campaign=campaign, username=request.POST.get("username", ""), created_by=request.user
        )
    except ApplicationError as exc:
        return _campaign_page(request, campaign, form, status=400, invite_error=exc.message)
    link = request.build_absolute_uri(reverse("manage:invite-accept", args=[issued.token]))
    response = _campaign_page(request, campaign, form, invite_link=link)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def guidelines_preview(request: HttpRequest) -> JsonResponse:
    """The guidelines as raters will see them: the same sanitiser as the rater page."""
    _require_admin(request)
    try:
        text = json.loads(request.body or b"{}").get("text", "")
    except (ValueError, AttributeError):
        return JsonResponse({"detail": 'Send JSON {"text": "..."}.', "errors": {"text": ["not JSON"]}}, status=400)
    if not isinstance(text, str) or len(text) > MAX_PREVIEW_CHARS:
        return JsonResponse(
            {"detail": "text must be a string", "errors": {"text": [f"at most {MAX_PREVIEW_CHARS} characters"]}},
            status=400,
        )
    return JsonResponse({"html": str(render_markdown(text))})


# --------------------------------------------------------------------------- invites


class SetPasswordForm(forms.Form):
    password1 = forms.CharField(label="New password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="New password again", widget=forms.PasswordInput, strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The invitee sets a password; the link is then spent and they are logged in."""
    invite = invites.invite_for_token(token=token)
    if invite is None:
        raise Http404("This invite link is unknown, used or expired. Ask an admin for a new one.")
    form = SetPasswordForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invites.invite_accept(token=token, password=form.cleaned_data["password1"])
        except ApplicationError as exc:
            if exc.status_code == 404:
                raise Http404(exc.message) from exc
            form.add_error("password1", exc.message)
        else:
            login(request, user, backend="richhf_site.auth.RoleModelBackend")
            return redirect("home")
    response = render(
        request,
        "frontend/manage/invite_accept.html",
        {"form": form, "invitee": invite.user.username},
        status=400 if request.method == "POST" else 200,
    )
    response["Cache-Control"] = "no-store"
    # The token is in this page's URL: never sent to another site. ("no-referrer" would make
    # the browser send Origin: null with the form, which Django's CSRF check refuses.)
    response["Referrer-Policy"] = "same-origin"
    return response


# --------------------------------------------------------------------------- uploads, imports


def _jobs_page(request: HttpRequest, *, kind: str) -> HttpResponse:
    _require_lead(request)
    jobs = ImportJob.objects.filter(kind=kind).select_related("campaign", "requested_by")[:30]
    campaigns = list(Campaign.objects.values("id", "name"))
    config = {
        "kind": kind,
        "is_admin": roles.is_admin(request.user),
        "max_bytes": _max_upload_bytes(),
        "urls": {
            "create": reverse("exports:campaign-imports", args=[0]),
            "job": reverse("exports:import-job", args=[0]),
        },
    }
    return render(
        request,
        "frontend/manage/uploads.html",
        {
            "kind": kind,
            "jobs": jobs,
            "campaigns": campaigns,
            "splits": SPLIT_ORDER,
            "config": config,
            "nav": _nav(request, "uploads" if kind == ImportJob.Kind.ITEMS else "imports"),
        },
    )


def _max_upload_bytes() -> int:
    return int(settings.RICHHF_MAX_UPLOAD_BYTES)


@login_required
@_explained_403
def uploads(request: HttpRequest) -> HttpResponse:
    return _jobs_page(request, kind=ImportJob.Kind.ITEMS)


@login_required
@_explained_403
def imports(request: HttpRequest) -> HttpResponse:
    return _jobs_page(request, kind=ImportJob.Kind.RELEASE)


@login_required
@_explained_403
def import_job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    _require_lead(request)
    job = get_object_or_404(ImportJob.objects.select_related("campaign", "requested_by"), pk=job_id)
    config = {"job_id": job.pk, "urls": {"job": reverse("exports:import-job", args=[job.pk])}}
    return render(
        request,
        "frontend/manage/import_job.html",
        {"job": job, "config": config, "nav": _nav(request, "uploads" if job.kind == "items" else "imports")},
    )


# --------------------------------------------------------------------------- exports


@login_required
@_explained_403
def exports(request: HttpRequest) -> HttpResponse:
    _require_lead(request)
    history = ExportJob.objects.select_related("campaign", "requested_by")[:50]
    config = {
        "is_admin": roles.is_admin(request.user),
        "urls": {
            "create": reverse("exports:campaign-exports", args=[0]),
            "job": reverse("exports:job", args=[0]),
        },
    }
    return render(
        request,
        "frontend/manage/exports.html",
        {
            "history": history,
            "campaigns": Campaign.objects.all(),
            "formats": [(f, ExportJob.Format(f).label) for f in FORMATS],
            "splits": SPLIT_ORDER,
            "config": config,
            "nav": _nav(request, "exports"),
        },
    )
