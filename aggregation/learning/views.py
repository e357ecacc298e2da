"""The learning page (leads and admins): the Retrain button with the run's progress, the
learning settings (admins change them; leads see them read-only, as the settings API allows),
the versions with their dev metrics over time, and what the queue order is based on.

The page is rendered with its data embedded (json_script); learning.js draws the charts and
polls the versions API while a run is queued or running."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from annotation.models import Campaign
from modeling.protocol import SCORE_NAMES
from richhf_site import roles

from . import selectors
from .apis import SettingsIO, VersionOutput
from .models import LearningSettings, Strategy

# One line per setting, shown under its field (the page explains every figure it shows).
SETTING_HELP = {
    "enabled": "Retrain by itself on the schedule below; off = only the Retrain button starts a run.",
    "schedule_hours": "Retrain when the last run is at least this many hours old (blank = no time trigger).",
    "min_new_aggregates": "Retrain when this many new aggregated items arrived since the last run (blank = no count trigger).",
    "strategy": "How the model orders the untouched train items in the rating queue.",
    "random_share": "Share of queue positions (0–1) given to random items, so the model also sees what it would not pick.",
}


@login_required
def campaign_learning(request: HttpRequest, campaign_id: int) -> HttpResponse:
    if not roles.is_lead_or_admin(request.user):
        raise PermissionDenied("The learning page is for project leads and admins.")
    # The settings come with the campaign (one query); a campaign without a row shows the
    # defaults, unsaved, until an admin saves the form (a GET writes nothing).
    campaign = get_object_or_404(Campaign.objects.select_related("learning_settings"), pk=campaign_id)
    versions = list(selectors.versions_for_campaign(campaign=campaign))
    try:
        learning = campaign.learning_settings
    except LearningSettings.DoesNotExist:
        learning = LearningSettings(campaign=campaign)
    can_edit = roles.is_admin(request.user)
    config = {
        "campaign": campaign.pk,
        "can_edit": can_edit,
        "score_names": list(SCORE_NAMES),
        "versions": VersionOutput(versions, many=True).data,
        "settings": SettingsIO(learning).data,
        "show_suggestions": campaign.show_suggestions,
        "strategies": [{"value": value, "label": label} for value, label in Strategy.choices],
        "help": SETTING_HELP,
        "urls": {
            "versions": reverse("learning:api-versions", args=[campaign.pk]),
            "retrain": reverse("learning:api-retrain", args=[campaign.pk]),
            "settings": reverse("learning:api-settings", args=[campaign.pk]),
            "campaign_edit": reverse("manage:campaign-edit", args=[campaign.pk]),
        },
    }
    context = {
        "campaign": campaign,
        "config": config,
        "can_edit": can_edit,
        "queue": selectors.queue_explanation(campaign=campaign),
        "versions": versions,
    }
    return render(request, "learning/campaign.html", context)
