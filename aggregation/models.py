"""Derived data computed from raw annotations. Recomputed and upserted, never incremented."""

from django.db import models

from annotation.models import Item


class ItemAggregate(models.Model):
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="aggregate")
    n_annotations = models.PositiveSmallIntegerField()
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"aggregate of item {self.item_id}"
