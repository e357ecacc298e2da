"""Webhook endpoints (admins) and their delivery log (leads and admins)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from richhf_site.inputs import StrictInput
from richhf_site.permissions import IsAdmin, IsLeadOrAdmin

from . import selectors, services
from .events import EVENT_NAMES
from .models import WebhookDelivery, WebhookEndpoint


class WebhookEndpointOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "campaign",
            "url",
            "events",
            "is_active",
            "disabled_reason",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]


class WebhookEndpointCreatedOutput(WebhookEndpointOutput):
    """The one response that carries the signing secret."""

    class Meta(WebhookEndpointOutput.Meta):
        fields = [*WebhookEndpointOutput.Meta.fields, "secret"]


class WebhookDeliveryOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "delivery_id",
            "event",
            "payload",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "created_at",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
        ]


class CampaignWebhooksApi(APIView):
    """Admins register a campaign's webhook endpoints and list them."""

    permission_classes = [IsAdmin]

    class CreateInput(StrictInput):
        # A plain string: the service's check names what is wrong (scheme, host, address).
        url = serializers.CharField(max_length=2000)
        events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_NAMES), allow_empty=False)
        secret = serializers.CharField(required=False, min_length=16, max_length=200, write_only=True)

    @extend_schema(responses=WebhookEndpointOutput(many=True))
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response(WebhookEndpointOutput(selectors.endpoints_of_campaign(campaign=campaign), many=True).data)

    @extend_schema(request=CreateInput, responses={201: WebhookEndpointCreatedOutput})
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        serializer = self.CreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(campaign=campaign, created_by=request.user, **serializer.validated_data)
        return Response(WebhookEndpointCreatedOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointApi(APIView):
    permission_classes = [IsAdmin]

    class UpdateInput(StrictInput):
        url = serializers.CharField(max_length=2000, required=False)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=EVENT_NAMES), allow_empty=False, required=False
        )
        is_active = serializers.BooleanField(required=False)

    @extend_schema(responses=WebhookEndpointOutput)
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(WebhookEndpointOutput(get_object_or_404(WebhookEndpoint, pk=endpoint_id)).data)

    @extend_schema(request=UpdateInput, responses=WebhookEndpointOutput)
    def patch(self, request: Request, endpoint_id: int) -> Response:
        endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
        serializer = self.UpdateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **serializer.validated_data)
        return Response(WebhookEndpointOutput(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        services.endpoint_delete(endpoint=get_object_or_404(WebhookEndpoint, pk=endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignWebhookDeliveriesApi(APIView):
    """The delivery log of a campaign's endpoints, newest first."""

    permission_classes = [IsLeadOrAdmin]

    class Pagination(LimitOffsetPagination):
        default_limit = 50
        max_limit = 500

    # Read by drf-spectacular, which then documents the paginated envelope, not a bare list.
    pagination_class = Pagination

    class FilterInput(serializers.Serializer):
        endpoint = serializers.IntegerField(required=False, min_value=1)
        status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("endpoint", int, description="Only this endpoint's deliveries."),
            OpenApiParameter("status", str, enum=WebhookDelivery.Status.values),
        ],
        responses=WebhookDeliveryOutput(many=True),
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        filters = self.FilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        deliveries = selectors.deliveries_of_campaign(
            campaign=campaign,
            endpoint_id=filters.validated_data.get("endpoint"),
            status=filters.validated_data.get("status"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(WebhookDeliveryOutput(page, many=True).data)
