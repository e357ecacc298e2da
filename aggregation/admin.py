from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import ItemAggregate


@admin.register(ItemAggregate)
class ItemAggregateAdmin(admin.ModelAdmin):
    """Read-only: aggregates are derived data, recomputed from annotations, never edited."""

    list_display = [
        "item",
        "campaign",
        "n_annotations",
        "plausibility_normalised",
        "alignment_normalised",
        "overall_normalised",
        "prompt_misalignment_label",
        "implausibility_coverage",
        "computed_at",
    ]
    list_filter = ["item__campaign"]
    search_fields = ["item__prompt", "item__source_id"]
    list_select_related = ["item", "item__campaign"]
    readonly_fields = ["implausibility_preview", "misalignment_preview"]

    @admin.display(description="campaign")
    def campaign(self, obj: ItemAggregate) -> str:
        return obj.item.campaign.name

    def _preview(self, obj: ItemAggregate, kind: str) -> str:
        if not obj.pk:
            return "-"
        url = reverse("aggregation:item-heatmap", args=[obj.item_id, kind])
        return format_html('<img src="{}" style="width:256px;image-rendering:pixelated" alt="{} heatmap">', url, kind)

    @admin.display(description="implausibility heatmap")
    def implausibility_preview(self, obj: ItemAggregate) -> str:
        return self._preview(obj, "implausibility")

    @admin.display(description="misalignment heatmap")
    def misalignment_preview(self, obj: ItemAggregate) -> str:
        return self._preview(obj, "misalignment")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
