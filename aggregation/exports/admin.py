from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from annotation.admin import CampaignAdmin
from annotation.models import Campaign

from . import services
from .models import ExportJob, ImportedLabel, ImportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "campaign",
        "format",
        "status",
        "progress_percent",
        "items_exported",
        "download",
        "sha256",
        "created_at",
    ]
    list_filter = ["status", "format", "campaign"]
    # The archive's own link would point at MEDIA_URL, which is never routed (files go through
    # permission-checked views): "download" links to the export API instead. Progress is shown
    # as a percentage, not as the raw 0..1 fraction with its help text.
    readonly_fields = [
        *(f.name for f in ExportJob._meta.fields if f.name not in {"archive", "progress"}),
        "progress_percent",
        "download",
    ]
    exclude = ["archive", "progress"]

    def has_add_permission(self, request) -> bool:
        return False  # started from the campaign list's actions, so they run as jobs

    @admin.display(description="progress")
    def progress_percent(self, obj: ExportJob) -> str:
        return f"{obj.progress:.0%}"

    @admin.display(description="download")
    def download(self, obj: ExportJob) -> str:
        if obj.status != ExportJob.Status.SUCCEEDED:
            return "-"
        return format_html('<a href="{}">zip</a>', reverse("exports:download", args=[obj.pk]))


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "kind", "status", "progress_percent", "imported", "rejected", "created_at"]
    list_filter = ["status", "kind", "campaign"]
    readonly_fields = [
        *(f.name for f in ImportJob._meta.fields if f.name != "progress"),
        "progress_percent",
        "page",
    ]
    exclude = ["progress"]

    def has_add_permission(self, request) -> bool:
        return False  # started from /manage/uploads/, so the files reach a worker

    @admin.display(description="progress")
    def progress_percent(self, obj: ImportJob) -> str:
        return f"{obj.progress:.0%}"

    @admin.display(description="rejected rows")
    def rejected(self, obj: ImportJob) -> int:
        return len(obj.problems)

    @admin.display(description="page")
    def page(self, obj: ImportJob) -> str:
        return format_html('<a href="{}">follow on the uploads page</a>', reverse("manage:import-job", args=[obj.pk]))


@admin.register(ImportedLabel)
class ImportedLabelAdmin(admin.ModelAdmin):
    list_display = ["item", "filename", "plausibility", "alignment", "aesthetics", "overall", "source"]
    raw_id_fields = ["item"]
    search_fields = ["filename"]


def _export_action(fmt: str) -> Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Campaign]], None]:
    @admin.action(description=f"Export as {fmt} (background job)")
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            job = services.export_job_create(campaign=campaign, fmt=fmt, requested_by=request.user)
            url = reverse("admin:exports_exportjob_change", args=[job.pk])
            messages.info(
                request,
                format_html('Export {} of {} queued: <a href="{}">follow its progress</a>.', fmt, campaign, url),
            )

    action.__name__ = f"export_{fmt}"
    return action


# The campaign admin lives in annotation/, which must not know about exports: this app adds
# its actions to it.
_actions = [
    *(getattr(CampaignAdmin, "actions", None) or []),
    *(_export_action(f) for f in ("tfrecord", "parquet", "jsonl")),
]
setattr(CampaignAdmin, "actions", _actions)  # noqa: B010 (mypy: a class-level generic attribute)
