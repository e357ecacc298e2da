"""Read-only API over aggregates, for leads and admins only (raters never see other raters'
answers or their consensus)."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from modeling.protocol import MAP_KINDS, RELEASE_MAP_NAMES, SCORE_NAMES
from richhf_site.errors import ApplicationError
from richhf_site.permissions import IsLeadOrAdmin
from richhf_site.schema import limit_offset_page

from . import selectors
from .models import ItemAggregate


def _heatmap_url(aggregate: ItemAggregate, kind: str) -> str:
    # The file name carries the content hash: a recompute that changes the map changes the URL.
    version = getattr(aggregate, f"{kind}_map").name.rsplit("-", 1)[-1].removesuffix(".png")
    return f"{reverse('aggregation:item-heatmap', args=[aggregate.item_id, kind])}?v={version}"


class ItemAggregateOutput(serializers.Serializer):
    item = serializers.IntegerField(source="item_id")
    campaign = serializers.IntegerField(source="item.campaign_id")
    prompt = serializers.CharField(source="item.prompt")
    n_annotations = serializers.IntegerField()
    annotation_ids = serializers.JSONField()
    computed_at = serializers.DateTimeField()
    settings = serializers.JSONField()
    is_current = serializers.SerializerMethodField()
    scores = serializers.SerializerMethodField()
    words = serializers.SerializerMethodField()
    misaligned_words = serializers.JSONField()
    prompt_misalignment_label = serializers.CharField()
    tagged_target = serializers.CharField()
    agreement = serializers.SerializerMethodField()
    heatmaps = serializers.SerializerMethodField()

    def get_is_current(self, obj: ItemAggregate) -> bool:
        return selectors.aggregate_is_current(obj)

    def get_scores(self, obj: ItemAggregate) -> dict:
        return {
            name: {"mean": getattr(obj, f"{name}_mean"), "normalised": getattr(obj, f"{name}_normalised")}
            for name in SCORE_NAMES
        }

    def get_words(self, obj: ItemAggregate) -> list[dict]:
        majority = set(obj.misaligned_words)
        return [
            {"index": i, "word": word, "votes": votes, "misaligned": i in majority}
            for i, (word, votes) in enumerate(zip(obj.item.words, obj.word_votes, strict=True))
        ]

    def get_agreement(self, obj: ItemAggregate) -> dict:
        return {
            "score_maxdiff": {name: getattr(obj, f"{name}_maxdiff") for name in SCORE_NAMES},
            "heatmaps": {
                kind: {"iou": getattr(obj, f"{kind}_iou"), "cc": getattr(obj, f"{kind}_cc")} for kind in MAP_KINDS
            },
            "keyword_unanimity": obj.keyword_unanimity,
        }

    def get_heatmaps(self, obj: ItemAggregate) -> dict:
        return {
            kind: {
                "url": _heatmap_url(obj, kind),
                "release_name": RELEASE_MAP_NAMES[kind],
                "max": getattr(obj, f"{kind}_max"),
                "mean": getattr(obj, f"{kind}_mean"),
                "coverage": getattr(obj, f"{kind}_coverage"),
                "points": getattr(obj, f"{kind}_points"),
            }
            for kind in MAP_KINDS
        }


class ItemAggregateApi(APIView):
    permission_classes = [IsLeadOrAdmin]

    @extend_schema(responses=ItemAggregateOutput)
    def get(self, request, item_id: int):
        aggregate = selectors.aggregate_for_item(item_id=item_id)
        if aggregate is None:
            raise ApplicationError(
                "This item has no aggregate (it is not complete yet, or not aggregated yet).", status_code=404
            )
        return Response(ItemAggregateOutput(aggregate).data)


class CampaignAggregateListApi(APIView):
    permission_classes = [IsLeadOrAdmin]

    class Pagination(LimitOffsetPagination):
        default_limit = 50
        max_limit = 500

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description=f"Page size, at most {Pagination.max_limit}."),
            OpenApiParameter("offset", int),
        ],
        operation_id="campaigns_aggregates_list",
        responses=limit_offset_page(ItemAggregateOutput, name="ItemAggregatePage"),
    )
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(selectors.aggregates_of_campaign(campaign=campaign), request, view=self)
        return paginator.get_paginated_response(ItemAggregateOutput(page, many=True).data)


class ItemHeatmapApi(APIView):
    """The 8-bit grayscale PNG of one of the item's aggregated heatmaps."""

    permission_classes = [IsLeadOrAdmin]

    @extend_schema(
        parameters=[OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(MAP_KINDS))],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request, item_id: int, kind: str):
        if kind not in MAP_KINDS:
            raise ApplicationError(f"kind must be one of {', '.join(MAP_KINDS)}", status_code=404)
        aggregate = selectors.aggregate_for_item(item_id=item_id)
        if aggregate is None:
            raise ApplicationError("This item has no aggregate.", status_code=404)
        try:
            handle = getattr(aggregate, f"{kind}_map").open("rb")
        except FileNotFoundError as exc:  # the reconciler or the next recompute rewrites it
            raise ApplicationError("The heatmap file is missing; it will be recomputed.", status_code=404) from exc
        response = FileResponse(handle, content_type="image/png")
        response["Cache-Control"] = "private, max-age=86400"
        return response
