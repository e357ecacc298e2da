from django.contrib import admin

from .models import QualityAction, QualityPolicy, QualityRun, RaterSnapshot


@admin.register(QualityPolicy)
class QualityPolicyAdmin(admin.ModelAdmin):
    list_display = ("campaign", "pause_mode", "exclude_mode", "redundancy_mode", "reliability_threshold", "min_answers")


@admin.register(QualityRun)
class QualityRunAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "state", "progress", "trigger", "created_at", "finished_at")
    list_filter = ("state",)
    readonly_fields = [f.name for f in QualityRun._meta.fields]


@admin.register(RaterSnapshot)
class RaterSnapshotAdmin(admin.ModelAdmin):
    list_display = ("run", "rater", "n_answers", "reliability", "gold_accuracy", "fast_share", "flags")
    raw_id_fields = ("run", "rater", "campaign")


@admin.register(QualityAction)
class QualityActionAdmin(admin.ModelAdmin):
    """The audit log is written by the services only: read-only here."""

    list_display = ("id", "campaign", "kind", "state", "rater", "item", "automatic", "applied_by", "created_at")
    list_filter = ("kind", "state", "automatic")
    readonly_fields = [f.name for f in QualityAction._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
