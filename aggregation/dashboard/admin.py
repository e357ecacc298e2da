from django.contrib import admin

from .models import CampaignStats, ExtraRaterRequest


@admin.register(CampaignStats)
class CampaignStatsAdmin(admin.ModelAdmin):
    list_display = ("campaign", "version", "n_annotations", "computed_at", "compute_seconds", "refresh_requested_at")
    readonly_fields = ("payload",)


@admin.register(ExtraRaterRequest)
class ExtraRaterRequestAdmin(admin.ModelAdmin):
    list_display = ("item", "status", "requested_by", "n_annotations_at_request", "created_at")
    list_filter = ("status",)
