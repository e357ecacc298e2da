"""Active learning: per-campaign settings, the model registry, per-item predictions.

A ModelVersion row is the unit of one retraining run. The database enforces the two rules
the loop depends on: at most one run in flight per campaign (the lock) and at most one
active version per campaign (both partial unique constraints).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from annotation.models import Campaign, Item


class Strategy(models.TextChoices):
    UNCERTAINTY = "uncertainty", "Model uncertainty (MC dropout variance)"
    LOW_PLAUSIBILITY = "low_plausibility", "Lowest predicted plausibility"
    HEAD_DISAGREEMENT = "head_disagreement", "Disagreement between heads"
    RANDOM = "random", "Random"


class LearningSettings(models.Model):
    """Off by default: a campaign opts in, and chooses when and how to retrain."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="learning_settings")
    enabled = models.BooleanField(default=False)
    schedule_hours = models.FloatField(null=True, blank=True, help_text="Retrain when the last run is this old.")
    min_new_aggregates = models.PositiveIntegerField(
        null=True, blank=True, help_text="Retrain when this many aggregates arrived since the last run."
    )
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.UNCERTAINTY)
    random_share = models.FloatField(default=0.1, help_text="Share of queue positions given to random items.")
    extra_training_campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="e.g. an imported RichHF-18K campaign; its train split is added to the training data.",
    )
    config_name = models.CharField(max_length=20, default="tiny")
    variant = models.CharField(max_length=20, default="multihead")
    max_steps = models.PositiveIntegerField(default=200)
    max_minutes = models.FloatField(default=30.0)
    batch_size = models.PositiveSmallIntegerField(default=8)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "learning settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(random_share__gte=0) & Q(random_share__lte=1), name="learning_random_share_range"
            ),
            models.CheckConstraint(condition=Q(max_minutes__gt=0), name="learning_max_minutes_positive"),
            models.CheckConstraint(condition=Q(max_steps__gte=1), name="learning_max_steps_positive"),
        ]

    def __str__(self) -> str:
        return f"learning settings of {self.campaign}"


class VersionStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


IN_FLIGHT = (VersionStatus.QUEUED, VersionStatus.RUNNING)


class ModelVersion(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="model_versions")
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=100, blank=True, help_text="schedule, new aggregates, manual")
    config = models.JSONField(default=dict, help_text="Training arguments and the settings used.")
    data_counts = models.JSONField(default=dict, help_text="Items per split in the training export.")
    aggregates_seen = models.PositiveIntegerField(default=0, help_text="Current aggregates when the data was taken.")
    dev_metrics = models.JSONField(null=True, blank=True)
    combined_metric = models.FloatField(null=True, blank=True)
    compared_with = models.JSONField(
        null=True, blank=True, help_text="The then-active version re-evaluated on the same dev data."
    )
    checkpoint_prefix = models.CharField(max_length=255, blank=True, help_text="Storage path of the checkpoint.")
    is_active = models.BooleanField(default=False)
    activated_by = models.CharField(max_length=150, blank=True, help_text="'rule' or the admin's username")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    duration_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(is_active=True), name="learning_one_active_version_per_campaign"
            ),
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(status__in=IN_FLIGHT), name="learning_one_run_in_flight_per_campaign"
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(status=VersionStatus.DONE), name="learning_active_only_when_done"
            ),
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="learning_progress_range"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} v{self.pk} ({self.status})"


def prediction_map_path(instance: ItemPrediction, filename: str) -> str:
    return f"learning/predictions/{instance.item.campaign_id}/{filename}"


class ItemPrediction(models.Model):
    """The latest prediction for an item still needing raters (recomputed + upserted)."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="prediction")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    scores = models.JSONField()
    misaligned_indices = models.JSONField(default=list)
    tagged_prompt = models.TextField(blank=True)
    implausibility_map = models.FileField(upload_to=prediction_map_path, max_length=255)
    misalignment_map = models.FileField(upload_to=prediction_map_path, max_length=255)
    strategy = models.CharField(max_length=20, choices=Strategy.choices)
    acquisition = models.FloatField()
    queue_rank = models.PositiveIntegerField(help_text="0 = leased first among untouched items.")
    explored = models.BooleanField(default=False, help_text="Placed by the random share, not by its value.")
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["version", "queue_rank"], name="learning_pred_rank_idx")]

    def __str__(self) -> str:
        return f"prediction for item {self.item_id} by v{self.version_id}"
