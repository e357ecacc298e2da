"""Cached campaign statistics and extra-rater requests.

CampaignStats is derived data: the recompute service rebuilds the whole payload from the raw
annotations and overwrites the row (upsert under STATS_VERSION), never adjusting it in place,
so running it twice changes nothing but computed_at.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Campaign, Item


class CampaignStats(models.Model):
    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="dashboard_stats")
    version = models.PositiveIntegerField(help_text="Payload layout version (services.recompute.STATS_VERSION).")
    payload = models.JSONField(default=dict)
    n_annotations = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(null=True, blank=True)
    # Set when a refresh is enqueued, cleared by the recompute; the page shows "refreshing".
    refresh_requested_at = models.DateTimeField(null=True, blank=True)
    # Where the running recompute is (0..1 and a word), so the page can show a progress bar.
    refresh_progress = models.FloatField(default=0.0)
    refresh_stage = models.CharField(max_length=60, blank=True)

    class Meta:
        verbose_name_plural = "campaign stats"
        constraints = [
            models.CheckConstraint(
                condition=Q(refresh_progress__gte=0) & Q(refresh_progress__lte=1), name="campaignstats_progress_range"
            )
        ]

    def __str__(self) -> str:
        return f"stats of campaign {self.campaign_id} (v{self.version}, {self.computed_at})"


class ExtraRaterRequest(models.Model):
    """A lead asked for one more rater on an item (worst-agreement list)."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        FULFILLED = "fulfilled", "fulfilled"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="extra_rater_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    n_annotations_at_request = models.PositiveSmallIntegerField()
    previous_priority = models.FloatField()
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open request per item: a second click does not ask for a second extra rater.
            models.UniqueConstraint(fields=["item"], condition=Q(status="open"), name="extrarater_one_open_per_item"),
        ]

    def __str__(self) -> str:
        return f"extra rater for item {self.item_id} ({self.status})"
