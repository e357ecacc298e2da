from django.conf import settings
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from richhf_site import roles
from richhf_site.inputs import StrictInput
from richhf_site.permissions import IsAdmin

from . import jobs, services
from .models import ExportJob, ImportJob
from .records import SPLIT_ORDER
from .writers import FORMATS


class LeadReadsAdminWrites(BasePermission):
    """Leads follow jobs (lists, status); only admins start them."""

    message = "Leads may follow jobs; only admins may start them."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return roles.is_lead_or_admin(request.user)
        return roles.is_admin(request.user)


class ExportJobOutput(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.name")
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "campaign",
            "format",
            "include_image_bytes",
            "with_images",
            "split",
            "status",
            "progress",
            "items_exported",
            "left_out",
            "sha256",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
        ]

    def get_download_url(self, job) -> str | None:
        return reverse("exports:download", args=[job.pk]) if job.status == ExportJob.Status.SUCCEEDED else None


class ExportCreateInput(StrictInput):
    format = serializers.ChoiceField(choices=FORMATS)
    include_image_bytes = serializers.BooleanField(required=False, default=False)
    with_images = serializers.BooleanField(required=False, default=False)
    split = serializers.ChoiceField(choices=["", *SPLIT_ORDER], required=False, default="")


class CampaignExportsApi(APIView):
    """Admins start an export as a background job; leads and admins list a campaign's exports."""

    permission_classes = [LeadReadsAdminWrites]

    @extend_schema(responses=ExportJobOutput(many=True))
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response(ExportJobOutput(campaign.export_jobs.all()[:50], many=True).data)

    @extend_schema(request=ExportCreateInput, responses={202: ExportJobOutput})
    def post(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        serializer = ExportCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = services.export_job_create(
            campaign=campaign,
            fmt=serializer.validated_data["format"],
            requested_by=request.user,
            include_image_bytes=serializer.validated_data["include_image_bytes"],
            with_images=serializer.validated_data["with_images"],
            split=serializer.validated_data["split"],
        )
        return Response(ExportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ExportJobApi(APIView):
    permission_classes = [LeadReadsAdminWrites]

    @extend_schema(responses=ExportJobOutput)
    def get(self, request, job_id: int):
        return Response(
            ExportJobOutput(get_object_or_404(ExportJob.objects.select_related("campaign"), pk=job_id)).data
        )


class ExportDownloadApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, job_id: int):
        job = get_object_or_404(ExportJob, pk=job_id, status=ExportJob.Status.SUCCEEDED)
        response = FileResponse(
            job.archive.open("rb"), as_attachment=True, filename=(job.archive.name or "export.zip").rsplit("/", 1)[-1]
        )
        response["X-Checksum-SHA256"] = job.sha256
        return response


# --------------------------------------------------------------------------- imports


class ImportJobOutput(serializers.ModelSerializer):
    campaign = serializers.CharField(source="campaign.name")
    file_names = serializers.SerializerMethodField()
    problems_count = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "campaign",
            "kind",
            "status",
            "progress",
            "file_names",
            "upload_bytes",
            "options",
            "imported",
            "already_present",
            "problems_count",
            "problems",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_file_names(self, job) -> list[str]:
        return [name.rsplit("/", 1)[-1] for name in job.files]

    def get_problems_count(self, job) -> int:
        return len(job.problems)


class ImportCreateInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ImportJob.Kind.values)
    split = serializers.ChoiceField(choices=["", *SPLIT_ORDER], required=False, default="")
    as_gold = serializers.BooleanField(required=False, default=False)


class CampaignImportsApi(APIView):
    """Admins upload items (images + a CSV/JSONL manifest, or one zip) or a RichHF-18K release
    (TFRecords, images, prompts) as a background import job; leads and admins list the jobs.

    multipart/form-data: kind, files (repeated), split, as_gold. A body over
    RICHHF_MAX_UPLOAD_BYTES is refused from its Content-Length before it is read (413)."""

    permission_classes = [LeadReadsAdminWrites]
    parser_classes = [MultiPartParser]

    @extend_schema(responses=ImportJobOutput(many=True))
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response(ImportJobOutput(campaign.import_jobs.select_related("campaign")[:50], many=True).data)

    @extend_schema(request={"multipart/form-data": ImportCreateInput}, responses={202: ImportJobOutput})
    def post(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.RICHHF_MAX_UPLOAD_BYTES + 1_048_576:  # the form's own fields ride along
            raise jobs.UploadRejected(
                f"the upload is {length:,} bytes; the limit is {settings.RICHHF_MAX_UPLOAD_BYTES:,} "
                "(RICHHF_MAX_UPLOAD_BYTES)",
                status_code=413,
            )
        serializer = ImportCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        uploads = [jobs.UploadedFile(name=f.name, size=f.size, handle=f) for f in request.FILES.getlist("files")]
        job = jobs.import_job_create(
            campaign=campaign,
            kind=serializer.validated_data["kind"],
            uploads=uploads,
            requested_by=request.user,
            split=serializer.validated_data["split"],
            as_gold=serializer.validated_data["as_gold"],
        )
        return Response(ImportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ImportJobApi(APIView):
    permission_classes = [LeadReadsAdminWrites]

    @extend_schema(responses=ImportJobOutput)
    def get(self, request, job_id: int):
        return Response(
            ImportJobOutput(get_object_or_404(ImportJob.objects.select_related("campaign"), pk=job_id)).data
        )
