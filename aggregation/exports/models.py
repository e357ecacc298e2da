"""Imported ground truth (public release records) and background export jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Campaign, Item
from modeling.protocol import SCORE_NAMES


def _unit(field: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": 0}) & Q(**{f"{field}__lte": 1}), name=f"importedlabel_{field}_unit"
    )


class ImportedLabel(models.Model):
    """Pre-aggregated ground truth from a release file: no per-rater data exists for it."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="imported_label")
    filename = models.CharField(max_length=255, help_text="The record's `filename` feature, kept verbatim.")
    plausibility = models.FloatField(help_text="artifact_score")
    alignment = models.FloatField(help_text="misalignment_score")
    aesthetics = models.FloatField(help_text="aesthetics_score")
    overall = models.FloatField(help_text="overall_score")
    prompt_misalignment_label = models.TextField()
    tagged_target = models.TextField()
    implausibility_map = models.FileField(upload_to="imported", max_length=255)
    misalignment_map = models.FileField(upload_to="imported", max_length=255)
    source = models.CharField(max_length=500, help_text="FILE#record-index it came from")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item_id"]
        constraints = [_unit(name) for name in SCORE_NAMES]

    def __str__(self) -> str:
        return f"imported label of {self.filename}"


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    class Format(models.TextChoices):
        TFRECORD = "tfrecord", "TFRecord (RichHF-18K release)"
        PARQUET = "parquet", "Parquet"
        JSONL = "jsonl", "JSONL (raw per-rater answers)"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=10, choices=Format.choices)
    include_image_bytes = models.BooleanField(
        default=False, help_text="Parquet only: embed image bytes instead of paths."
    )
    with_images = models.BooleanField(
        default=False, help_text="TFRecord only: add images/<filename> and prompts.jsonl (trainable, re-importable)."
    )
    split = models.CharField(max_length=10, blank=True, help_text="train, dev or test; empty: every split.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    items_exported = models.PositiveIntegerField(default=0)
    left_out = models.JSONField(default=dict, blank=True, help_text="reason -> number of items left out")
    archive = models.FileField(upload_to="exports", max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="exportjob_progress_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.format} export of {self.campaign} ({self.status})"


class ImportJob(models.Model):
    """An upload from the admins' page, imported by a worker: items (images plus a CSV/JSONL
    manifest, or one zip) or a RichHF-18K release (TFRecords, images, prompts).

    The uploaded files wait in the default storage under `upload_prefix` (a bucket when
    RICHHF_STORAGE=s3, so web and worker share no disk); the worker deletes them when done.
    """

    class Kind(models.TextChoices):
        ITEMS = "items", "items (images + manifest)"
        RELEASE = "release", "RichHF-18K release"

    Status = ExportJob.Status

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="import_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    upload_prefix = models.CharField(max_length=255, help_text="storage folder of the uploaded files")
    files = models.JSONField(default=list, help_text="names of the uploaded files")
    upload_bytes = models.BigIntegerField(default=0)
    options = models.JSONField(default=dict, blank=True, help_text="split (items), as_gold (release)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1")
    imported = models.PositiveIntegerField(default=0)
    already_present = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True, help_text="every rejected row as FILE:LINE: reason")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="importjob_progress_unit"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import into {self.campaign} ({self.status})"
