"""Raw annotation data: campaigns, items, leases (assignments) and the raters' answers.

Integrity lives in the database: one assignment per (item, rater), Likert scores in 1..5,
one content hash per campaign. Derived data (heatmaps, averaged scores) lives in aggregation/.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q, TextChoices

from modeling.protocol import SCORE_NAMES


class Campaign(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    raters_per_item = models.PositiveSmallIntegerField(default=3)
    # Effective radius of a point as a fraction of the image height (paper: 1/20).
    radius_fraction = models.FloatField(default=1 / 20)
    heatmap_width = models.PositiveIntegerField(default=512)
    heatmap_height = models.PositiveIntegerField(default=512)
    lease_minutes = models.PositiveIntegerField(default=20)
    show_suggestions = models.BooleanField(default=False)
    # Markdown for the rater's guidelines panel; guidelines_translations holds other languages
    # by language code ({"zh-hans": "..."}), falling back to guidelines.
    guidelines = models.TextField(blank=True, db_default="")
    guidelines_translations = models.JSONField(default=dict, blank=True, db_default={})
    # Quality control (issue 13): a new rater first answers qualification_items gold items and
    # needs a mean quality of qualification_threshold (0..1) to get real work; in production a
    # honeypot_share of leases are gold items.
    qualification_required = models.BooleanField(default=False, db_default=False)
    qualification_items = models.PositiveSmallIntegerField(default=5, db_default=5)
    qualification_threshold = models.FloatField(default=0.6, db_default=0.6)
    honeypot_share = models.FloatField(default=0.0, db_default=0.0)
    raters = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="campaigns")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(raters_per_item__gte=1), name="campaign_raters_per_item_positive"),
            models.CheckConstraint(
                condition=Q(radius_fraction__gt=0) & Q(radius_fraction__lte=0.5), name="campaign_radius_fraction_range"
            ),
            models.CheckConstraint(
                condition=Q(heatmap_width__gte=8) & Q(heatmap_height__gte=8), name="campaign_heatmap_size_min"
            ),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="campaign_lease_minutes_positive"),
            models.CheckConstraint(
                condition=Q(qualification_threshold__gte=0) & Q(qualification_threshold__lte=1),
                name="campaign_qualification_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(honeypot_share__gte=0) & Q(honeypot_share__lte=0.5), name="campaign_honeypot_share_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Split(models.TextChoices):
    TRAIN = "train", "train"
    DEV = "dev", "dev"
    TEST = "test", "test"


def item_image_path(instance: Item, filename: str) -> str:
    # Content-addressed, so a re-upload of the same bytes can never overwrite another image.
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "img"
    return f"items/{instance.campaign_id}/{instance.content_hash[:2]}/{instance.content_hash}.{suffix}"


class Item(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    image = models.ImageField(upload_to=item_image_path)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    prompt = models.TextField()
    # The prompt split exactly as the release's labels (docs/protocol.md section 4).
    words = models.JSONField()
    source_id = models.CharField(max_length=255, blank=True, help_text="e.g. the Pick-a-Pic file name")
    category = models.CharField(max_length=100, blank=True)
    # The text-to-image model that made the image (the dashboard's generator comparison).
    generator = models.CharField(max_length=200, blank=True, db_default="")
    # A gold item has a reference answer (GoldReference). It never counts toward k, never
    # reaches an export, and the rater's payload never says which items are gold.
    is_gold = models.BooleanField(default=False, db_default=False)
    photorealistic = models.BooleanField(null=True, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices, default=Split.TRAIN)
    priority = models.FloatField(default=0.0, help_text="Higher is leased first (active learning).")
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the k-th annotation is submitted; the hand-off point to aggregation.
    completed_at = models.DateTimeField(null=True, blank=True)
    # Submitted answers so far. Kept by annotation_submit under the item's row lock (the same
    # lock every count of the item's assignments is made under), so the queue can find
    # partly done items through a small partial index instead of counting per item.
    n_submitted = models.PositiveSmallIntegerField(default=0)
    # Raters asked for beyond the campaign's k (a lead's "request an extra rater").
    extra_raters = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "content_hash"], name="item_unique_content_per_campaign"),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="item_size_positive"),
        ]
        indexes = [
            models.Index(fields=["campaign", "completed_at", "-priority", "id"], name="item_queue_idx"),
            models.Index(
                fields=["campaign", "-priority", "id"],
                name="item_partly_done_idx",
                condition=Q(completed_at__isnull=True, n_submitted__gt=0),
            ),
            # The rater API walks untouched items in this order and stops at the first free one
            # (annotation.services._queue_untouched); item_queue_idx cannot give the order,
            # since "completed_at IS NULL" does not fix its second column for the planner.
            models.Index(
                fields=["campaign", "-priority", "id"],
                name="item_untouched_idx",
                condition=Q(completed_at__isnull=True, n_submitted=0, is_gold=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_id or self.content_hash[:12]}: {self.prompt[:60]}"

    @property
    def raters_wanted(self) -> int:
        """How many distinct raters this item needs: the campaign's k plus any extra."""
        return self.campaign.raters_per_item + self.extra_raters


class AssignmentState(models.TextChoices):
    LEASED = "leased", "leased"
    SUBMITTED = "submitted", "submitted"
    SKIPPED = "skipped", "skipped"
    EXPIRED = "expired", "expired"


class Assignment(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    state = models.CharField(max_length=10, choices=AssignmentState.choices, default=AssignmentState.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # Not a column: whether quality control paused the rater, read with the row by
    # annotation.services._get_own_assignment_locked.
    rater_is_paused: bool
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-leased_at"]
        constraints = [
            # A rater never holds two assignments for the same item, whatever their states.
            models.UniqueConstraint(fields=["item", "rater"], name="assignment_one_per_item_and_rater"),
            models.CheckConstraint(
                condition=Q(expires_at__gte=models.F("leased_at")), name="assignment_expiry_after_lease"
            ),
        ]
        indexes = [
            models.Index(fields=["item", "state", "expires_at"], name="assignment_item_state_idx"),
            models.Index(fields=["rater", "state"], name="assignment_rater_state_idx"),
            models.Index(fields=["state", "expires_at"], name="assignment_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} on item {self.item_id} ({self.state})"


def _likert(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{name}__gte": 1}) & Q(**{f"{name}__lte": 5}), name=f"annotation_{name}_likert"
    )


class Annotation(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="annotation")
    # Denormalised from the assignment so aggregation reads an item's answers in one query.
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    # [[x, y], ...] normalised to [0, 1] of the original image (x right, y down).
    implausible_points = models.JSONField(default=list)
    misaligned_points = models.JSONField(default=list)
    misaligned_words = models.JSONField(default=list, help_text="Sorted indices into Item.words.")
    plausibility = models.PositiveSmallIntegerField()
    alignment = models.PositiveSmallIntegerField()
    aesthetics = models.PositiveSmallIntegerField()
    overall = models.PositiveSmallIntegerField()
    time_spent_ms = models.PositiveIntegerField(default=0)
    suggestion_shown = models.BooleanField(default=False)
    # The rater took the model's suggested regions as points (then may have edited them).
    suggestion_accepted = models.BooleanField(default=False, db_default=False)
    # db_default on the new columns: the raw INSERTs of the hot paths (annotation/services.py)
    # name only the columns they set.
    # Excluded answers are kept but left out of every aggregate; set and cleared only through
    # annotation services, with the who and why in the quality audit log.
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_reason = models.CharField(max_length=500, blank=True, db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            *[_likert(name) for name in SCORE_NAMES],
            models.UniqueConstraint(fields=["item", "rater"], name="annotation_one_per_item_and_rater"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} by {self.rater} on item {self.item_id}"

    def scores(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SCORE_NAMES}


class Draft(models.Model):
    """The unsaved state of a live lease, saved as the rater works so a reload or another device
    picks it up. Never an answer: it goes when the lease is submitted, skipped or expires."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, primary_key=True, related_name="draft")
    # Same shape as a submission, every part optional: points, words, scores.
    answer = models.JSONField(default=dict)
    time_spent_ms = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"draft of assignment {self.assignment_id}"


class GoldSource(models.TextChoices):
    IMPORT = "import", "imported release record"
    EXPERT = "expert", "expert answer"


class GoldReference(models.Model):
    """The reference answer of a gold item: points (from an expert's answer) or maps (from an
    imported RichHF-18K record), the misaligned words and the four scores normalised to 0..1."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, primary_key=True, related_name="gold")
    source = models.CharField(max_length=10, choices=GoldSource.choices)
    implausible_points = models.JSONField(null=True, blank=True)
    misaligned_points = models.JSONField(null=True, blank=True)
    implausible_map = models.FileField(upload_to="gold/", null=True, blank=True)
    misaligned_map = models.FileField(upload_to="gold/", null=True, blank=True)
    misaligned_words = models.JSONField(default=list, help_text="Sorted indices into Item.words.")
    scores = models.JSONField(default=dict, help_text="Score name to its value normalised to 0..1.")
    source_annotation = models.ForeignKey(
        Annotation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"gold reference of item {self.item_id} ({self.source})"


class Qualification(models.TextChoices):
    PENDING = "pending", "pending"
    PASSED = "passed", "passed"
    FAILED = "failed", "failed"


class RaterStatus(models.Model):
    """A rater's standing in one campaign: qualification and pause. No row: never qualified
    (when the campaign requires it) and not paused."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rater_statuses")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater_statuses")
    qualification = models.CharField(max_length=10, choices=Qualification.choices, default=Qualification.PENDING)
    # Raised when an admin lets a failed rater try again; gold answers of older attempts stay.
    qualification_attempt = models.PositiveSmallIntegerField(default=1)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "rater"], name="rater_status_one_per_campaign")]

    def __str__(self) -> str:
        return f"{self.rater} in {self.campaign}: {self.qualification}{' (paused)' if self.paused_at else ''}"


class GoldAnswerKind(TextChoices):
    QUALIFICATION = "qualification", "qualification"
    HONEYPOT = "honeypot", "honeypot"


class GoldAnswerScore(models.Model):
    """One rater's answer on a gold item, scored against its reference (modeling/quality.py).

    Written by annotation_submit when the item is gold; read by the quality helpers for gold
    accuracy. The answer is copied here, so the score outlives its annotation when a gold item
    is handed to the same rater again for a new qualification attempt (rater_requalify).
    """

    annotation = models.OneToOneField(
        Annotation, on_delete=models.SET_NULL, null=True, blank=True, related_name="gold_score"
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="gold_scores")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="gold_scores")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gold_scores")
    kind = models.CharField(max_length=15, choices=GoldAnswerKind.choices)
    # RaterStatus.qualification_attempt when the answer was given.
    attempt = models.PositiveSmallIntegerField(default=1)
    quality = models.FloatField()
    # AnswerQuality.components(): map agreements, keyword P/R/F1, score MAE and agreement.
    components = models.JSONField(default=dict)
    # The answer as submitted: points, words, scores.
    answer = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quality__gte=0) & Q(quality__lte=1), name="gold_answer_score_quality_range"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "rater", "kind", "attempt"], name="gold_score_rater_idx")]

    def __str__(self) -> str:
        return f"{self.kind} answer of {self.rater} on item {self.item_id}: {self.quality:.2f}"
