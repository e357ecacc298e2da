from django.contrib import admin

from .models import ItemPrediction, LearningSettings, ModelVersion


@admin.register(LearningSettings)
class LearningSettingsAdmin(admin.ModelAdmin):
    list_display = ("campaign", "enabled", "strategy", "schedule_hours", "min_new_aggregates", "random_share")


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "status", "combined_metric", "is_active", "duration_s", "created_at")
    list_filter = ("status", "is_active")
    readonly_fields = [f.name for f in ModelVersion._meta.fields]


@admin.register(ItemPrediction)
class ItemPredictionAdmin(admin.ModelAdmin):
    list_display = ("item", "version", "strategy", "acquisition", "queue_rank", "explored")
    raw_id_fields = ("item", "version")
