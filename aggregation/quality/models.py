"""Rater quality control: each campaign's policy, the recompute runs (jobs with progress), a
snapshot per rater per run (the history trend charts are drawn from) and the audit log of
actions (pause, exclude, adaptive redundancy), with proposals awaiting a lead's click.

Derived rows (snapshots) are written once per run and never updated: a trend is the series of
a rater's snapshots. Actions are the only rows that change state (proposed -> applied ->
undone, or proposed -> dismissed), each change stamped with who and when.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Campaign


class Mode(models.TextChoices):
    OFF = "off", "off"
    PROPOSE = "propose", "propose (a lead clicks)"
    AUTO = "auto", "automatic"


def _unit(field: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": 0}) & Q(**{f"{field}__lte": 1}), name=f"qualitypolicy_{field}_range"
    )


class QualityPolicy(models.Model):
    """What quality control does in one campaign. No row: the defaults below (proposals only)."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, primary_key=True, related_name="quality_policy")
    # A rater is judged only after this many answers on items that other raters answered too.
    min_answers = models.PositiveSmallIntegerField(default=8)
    # Flag below this reliability (0..1, docs/quality.md) or gold accuracy (0..1).
    reliability_threshold = models.FloatField(default=0.33)
    gold_threshold = models.FloatField(default=0.5)
    # An answer is "fast" below speed_factor x the campaign's median time; a rater whose share
    # of fast answers reaches fast_share_threshold is flagged.
    speed_factor = models.FloatField(default=0.3)
    fast_share_threshold = models.FloatField(default=0.5)
    pause_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.PROPOSE)
    exclude_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.PROPOSE)
    redundancy_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.OFF)
    # Adaptive redundancy: an item whose agreement (0..1) is below this gets one more rater,
    # up to redundancy_cap extra raters in all.
    redundancy_threshold = models.FloatField(default=0.45)
    redundancy_cap = models.PositiveSmallIntegerField(default=2)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name_plural = "quality policies"
        constraints = [
            _unit("reliability_threshold"),
            _unit("gold_threshold"),
            _unit("fast_share_threshold"),
            _unit("redundancy_threshold"),
            models.CheckConstraint(
                condition=Q(speed_factor__gt=0) & Q(speed_factor__lte=1), name="qualitypolicy_speed_factor_range"
            ),
            models.CheckConstraint(condition=Q(min_answers__gte=1), name="qualitypolicy_min_answers_positive"),
        ]

    def __str__(self) -> str:
        return f"quality policy of {self.campaign}"


class RunState(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class QualityRun(models.Model):
    """One recompute of a campaign's rater reliability, a job with progress (0..1)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="quality_runs")
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=200, blank=True)
    trigger = models.CharField(max_length=20, default="manual", help_text="manual, beat or answers")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    n_answers = models.PositiveIntegerField(default=0)
    n_raters = models.PositiveIntegerField(default=0)
    median_time_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="qualityrun_progress_range"),
            # Debounce in the database: at most one queued run per campaign.
            models.UniqueConstraint(
                fields=["campaign"], condition=Q(state="queued"), name="qualityrun_one_queued_per_campaign"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="qualityrun_campaign_idx")]

    def __str__(self) -> str:
        return f"quality run {self.pk} of {self.campaign} ({self.state})"


class RaterSnapshot(models.Model):
    """One rater's figures in one run. Never updated: the history trend charts read."""

    run = models.ForeignKey(QualityRun, on_delete=models.CASCADE, related_name="snapshots")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    computed_at = models.DateTimeField()
    n_answers = models.PositiveIntegerField()
    n_excluded = models.PositiveIntegerField(default=0)
    # Components (docs/quality.md); null when the rater has too little overlap to tell.
    keyword_competence = models.FloatField(null=True, blank=True)
    score_bias = models.FloatField(null=True, blank=True, help_text="Likert points vs the co-raters' mean.")
    score_consistency = models.FloatField(null=True, blank=True, help_text="Pearson r with the co-raters' mean.")
    map_agreement = models.FloatField(null=True, blank=True)
    reliability = models.FloatField(null=True, blank=True)
    gold_accuracy = models.FloatField(null=True, blank=True)
    n_gold = models.PositiveIntegerField(default=0)
    median_time_ms = models.FloatField(null=True, blank=True)
    fast_share = models.FloatField(null=True, blank=True)
    # The rater's answers faster than speed_factor x the campaign median (the answer-level
    # speed signal a lead can exclude with one click).
    fast_answer_ids = models.JSONField(default=list)
    flags = models.JSONField(default=list)

    class Meta:
        ordering = ["run_id", "rater_id"]
        constraints = [models.UniqueConstraint(fields=["run", "rater"], name="ratersnapshot_one_per_run")]
        indexes = [models.Index(fields=["campaign", "rater", "computed_at"], name="ratersnapshot_trend_idx")]

    def __str__(self) -> str:
        return f"{self.rater} in run {self.run_id}"


class ActionKind(models.TextChoices):
    PAUSE = "pause", "pause a rater"
    EXCLUDE = "exclude", "exclude answers"
    REDUNDANCY = "redundancy", "extra rater for an item"


class ActionState(models.TextChoices):
    PROPOSED = "proposed", "proposed"
    APPLIED = "applied", "applied"
    DISMISSED = "dismissed", "dismissed"
    UNDONE = "undone", "undone"


class QualityAction(models.Model):
    """The audit log: every pause, exclusion and extra rater, proposed or applied, with who,
    when and why. automatic=True: applied by the recompute task under the policy (applied_by
    is then null)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="quality_actions")
    kind = models.CharField(max_length=12, choices=ActionKind.choices)
    state = models.CharField(max_length=10, choices=ActionState.choices)
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    item = models.ForeignKey("annotation.Item", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    # The answers an exclusion changed (or would change, while proposed).
    annotation_ids = models.JSONField(default=list)
    reason = models.CharField(max_length=500)
    automatic = models.BooleanField(default=False)
    run = models.ForeignKey(QualityRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="actions")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One open proposal per (campaign, kind, rater): a rerun does not pile up duplicates.
            models.UniqueConstraint(
                fields=["campaign", "kind", "rater"],
                condition=Q(state="proposed", rater__isnull=False),
                name="qualityaction_one_proposal_per_rater",
            ),
            models.UniqueConstraint(
                fields=["campaign", "kind", "item"],
                condition=Q(state="proposed", item__isnull=False),
                name="qualityaction_one_proposal_per_item",
            ),
        ]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="qualityaction_campaign_idx")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.state}) in {self.campaign}"
