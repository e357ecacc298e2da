from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from richhf_site.inputs import StrictInput
from richhf_site.permissions import IsAdmin

from . import services
from .models import ExportJob
from .writers import FORMATS


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


class CampaignExportsApi(APIView):
    """Admins start an export as a background job and list a campaign's exports."""

    permission_classes = [IsAdmin]

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
        )
        return Response(ExportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ExportJobApi(APIView):
    permission_classes = [IsAdmin]

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
