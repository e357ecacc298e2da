"""Derived data computed from raw annotations. Recomputed and upserted, never incremented.

An aggregate is *current* when its settings_fingerprint equals the fingerprint of its
campaign's settings today (aggregation.services.aggregates.settings_fingerprint): changing a
campaign's radius or heatmap size makes every aggregate of the campaign stale, and the
reconciliation task recomputes them.
"""

from django.db import models
from django.db.models import Q

from annotation.models import Item
from modeling.protocol import MAP_KINDS, SCORE_NAMES


def _between(field: str, low: float, high: float) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": low}) & Q(**{f"{field}__lte": high}), name=f"itemaggregate_{field}_range"
    )


def _between_or_null(field: str, low: float, high: float) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__isnull": True}) | (Q(**{f"{field}__gte": low}) & Q(**{f"{field}__lte": high})),
        name=f"itemaggregate_{field}_range",
    )


class ItemAggregate(models.Model):
    # One-to-one: the database guarantees a single aggregate per item, whatever runs at once.
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="aggregate")
    settings_fingerprint = models.CharField(max_length=64, db_index=True)
    settings = models.JSONField(help_text="What the fingerprint was computed from (version, radius, size).")
    inputs_digest = models.CharField(max_length=64, help_text="Hash of the annotations and geometry used.")
    n_annotations = models.PositiveSmallIntegerField()
    annotation_ids = models.JSONField(default=list)

    plausibility_mean = models.FloatField()
    plausibility_normalised = models.FloatField()
    plausibility_maxdiff = models.FloatField()
    alignment_mean = models.FloatField()
    alignment_normalised = models.FloatField()
    alignment_maxdiff = models.FloatField()
    aesthetics_mean = models.FloatField()
    aesthetics_normalised = models.FloatField()
    aesthetics_maxdiff = models.FloatField()
    overall_mean = models.FloatField()
    overall_normalised = models.FloatField()
    overall_maxdiff = models.FloatField()

    word_votes = models.JSONField(default=list, help_text="Per prompt word, how many raters marked it.")
    misaligned_words = models.JSONField(default=list, help_text="Indices the majority marked.")
    prompt_misalignment_label = models.TextField(help_text='Release format: "1 0 1", 0 = misaligned.')
    tagged_target = models.TextField(help_text='Model target: misaligned words suffixed "_0".')
    keyword_unanimity = models.FloatField()

    implausibility_map = models.FileField(upload_to="aggregates", max_length=255)
    implausibility_max = models.FloatField()
    implausibility_mean = models.FloatField()
    implausibility_coverage = models.FloatField()
    implausibility_points = models.PositiveIntegerField()
    implausibility_iou = models.FloatField(null=True, blank=True)
    implausibility_cc = models.FloatField(null=True, blank=True)

    misalignment_map = models.FileField(upload_to="aggregates", max_length=255)
    misalignment_max = models.FloatField()
    misalignment_mean = models.FloatField()
    misalignment_coverage = models.FloatField()
    misalignment_points = models.PositiveIntegerField()
    misalignment_iou = models.FloatField(null=True, blank=True)
    misalignment_cc = models.FloatField(null=True, blank=True)

    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["item_id"]
        constraints = [
            models.CheckConstraint(condition=Q(n_annotations__gte=1), name="itemaggregate_n_annotations_positive"),
            *[_between(f"{s}_mean", 1, 5) for s in SCORE_NAMES],
            *[_between(f"{s}_normalised", 0, 1) for s in SCORE_NAMES],
            *[_between(f"{s}_maxdiff", 0, 1) for s in SCORE_NAMES],
            _between("keyword_unanimity", 0, 1),
            *[_between(f"{m}_{f}", 0, 1) for m in MAP_KINDS for f in ("max", "mean", "coverage")],
            *[_between_or_null(f"{m}_iou", 0, 1) for m in MAP_KINDS],
            *[_between_or_null(f"{m}_cc", -1, 1) for m in MAP_KINDS],
        ]

    def __str__(self) -> str:
        return f"aggregate of item {self.item_id}"
