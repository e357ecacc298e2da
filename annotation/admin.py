from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import Annotation, Assignment, Campaign, Item


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "raters_per_item",
        "radius_fraction",
        "heatmap_width",
        "heatmap_height",
        "lease_minutes",
        "show_suggestions",
        "created_at",
    ]
    search_fields = ["name"]
    filter_horizontal = ["raters"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "thumbnail",
        "campaign",
        "short_prompt",
        "split",
        "priority",
        "width",
        "height",
        "completed_at",
    ]
    list_filter = ["campaign", "split", "category"]
    search_fields = ["prompt", "source_id", "content_hash"]
    readonly_fields = [
        "thumbnail",
        "words",
        "content_hash",
        "width",
        "height",
        "created_at",
        "completed_at",
        "n_submitted",
    ]

    @admin.display(description="image")
    def thumbnail(self, obj: Item) -> str:
        url = reverse("api:item-image", args=[obj.pk])
        return format_html(
            '<img src="{}" style="max-height:64px;max-width:96px" loading="lazy" alt="item {}">', url, obj.pk
        )

    @admin.display(description="prompt")
    def short_prompt(self, obj: Item) -> str:
        return obj.prompt[:80]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "rater", "state", "leased_at", "expires_at", "finished_at"]
    list_filter = ["state", "item__campaign"]
    search_fields = ["rater__username"]
    raw_id_fields = ["item", "rater"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "item",
        "rater",
        "plausibility",
        "alignment",
        "aesthetics",
        "overall",
        "time_spent_ms",
        "created_at",
    ]
    list_filter = ["item__campaign"]
    raw_id_fields = ["assignment", "item", "rater"]
