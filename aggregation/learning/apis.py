"""Thin API views: validate, call one service or selector, serialize."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Assignment, AssignmentState, Campaign
from richhf_site.inputs import StrictInput
from richhf_site.permissions import IsAdmin, IsLeadOrAdmin, IsRater
from richhf_site.schema import ErrorResponse

from . import selectors
from .models import ItemPrediction, LearningSettings, ModelVersion
from .services import evaluation, runs
from .services.settings import learning_settings_get, learning_settings_update


class VersionOutput(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "status",
            "progress",
            "stage",
            "reason",
            "data_counts",
            "aggregates_seen",
            "dev_metrics",
            "combined_metric",
            "compared_with",
            "is_active",
            "activated_by",
            "error",
            "attempts",
            "duration_s",
            "created_at",
            "started_at",
            "finished_at",
            "config",
        ]


class VersionListApi(APIView):
    permission_classes = [IsLeadOrAdmin]

    @extend_schema(responses=VersionOutput(many=True))
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response(VersionOutput(selectors.versions_for_campaign(campaign=campaign), many=True).data)


class RetrainOutput(serializers.Serializer):
    started = serializers.BooleanField(help_text="False when a queued or running version is returned instead.")
    version = VersionOutput()


class RetrainApi(APIView):
    """Starts a run unless one is queued or running (then that one is returned, 200)."""

    permission_classes = [IsLeadOrAdmin]

    @extend_schema(request=None, responses={200: RetrainOutput, 202: RetrainOutput})
    def post(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        result = runs.retrain_request(campaign=campaign, reason=f"manual ({request.user.get_username()})")
        code = status.HTTP_202_ACCEPTED if result.started else status.HTTP_200_OK
        return Response({"started": result.started, "version": VersionOutput(result.version).data}, status=code)


class VersionActivateApi(APIView):
    """An admin's choice overrides the activation rule."""

    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={200: VersionOutput, 409: ErrorResponse})
    def post(self, request, version_id: int):
        version = get_object_or_404(ModelVersion, pk=version_id)
        return Response(VersionOutput(evaluation.version_activate(version=version, user=request.user)).data)


class SettingsIO(StrictInput, serializers.ModelSerializer):
    extra_training_campaign = serializers.PrimaryKeyRelatedField(
        queryset=Campaign.objects.all(), allow_null=True, required=False
    )
    # The model's CheckConstraints, checked here too so that a bad value is named by its field.
    random_share = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    schedule_hours = serializers.FloatField(min_value=0.0, allow_null=True, required=False)

    class Meta:
        model = LearningSettings
        fields = [
            "enabled",
            "schedule_hours",
            "min_new_aggregates",
            "strategy",
            "random_share",
            "extra_training_campaign",
            "config_name",
            "variant",
            "max_steps",
            "max_minutes",
            "batch_size",
        ]


class SettingsApi(APIView):
    """Leads read the settings; only admins change them (the project's rule: leads read
    dashboards, admins configure). Retraining itself stays open to leads (RetrainApi)."""

    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "PUT" else [IsLeadOrAdmin()]

    @extend_schema(responses=SettingsIO)
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response(SettingsIO(learning_settings_get(campaign=campaign)).data)

    @extend_schema(request=SettingsIO(partial=True), responses=SettingsIO)
    def put(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        serializer = SettingsIO(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        row = learning_settings_update(campaign=campaign, **serializer.validated_data)
        return Response(SettingsIO(row).data)


class QueueHeadOutput(serializers.Serializer):
    item_id = serializers.IntegerField()
    rank = serializers.IntegerField()
    acquisition = serializers.FloatField()
    explored = serializers.BooleanField()
    priority = serializers.FloatField()
    prompt = serializers.CharField()


class QueueOutput(serializers.Serializer):
    """selectors.queue_explanation(): what the queue order is based on, and its first items."""

    enabled = serializers.BooleanField()
    basis = serializers.CharField()
    active_version = serializers.IntegerField(allow_null=True)
    head = QueueHeadOutput(many=True)


class QueueApi(APIView):
    permission_classes = [IsLeadOrAdmin]

    @extend_schema(responses=QueueOutput)
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response(selectors.queue_explanation(campaign=campaign))


class SuggestionMapApi(APIView):
    """A predicted heatmap PNG, only for the rater holding an open lease on the item, and
    only when the campaign shows suggestions. Anything else is a 404 (no existence leak)."""

    permission_classes = [IsRater]

    @extend_schema(
        parameters=[
            OpenApiParameter("task", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["implausibility", "misalignment"])
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request, assignment_id: int, task: str):
        assignment = (
            Assignment.objects.select_related("item__campaign")
            .filter(pk=assignment_id, rater=request.user, state=AssignmentState.LEASED, expires_at__gt=timezone.now())
            .first()
        )
        if (
            assignment is None
            or not assignment.item.campaign.show_suggestions
            or task not in ("implausibility", "misalignment")
        ):
            raise Http404
        prediction = ItemPrediction.objects.filter(item=assignment.item).first()
        if prediction is None:
            raise Http404
        field = prediction.implausibility_map if task == "implausibility" else prediction.misalignment_map
        response = FileResponse(field.open("rb"), content_type="image/png")
        response["Cache-Control"] = "private, no-store"
        return response
