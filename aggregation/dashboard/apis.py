"""Dashboard API: the cached payload as JSON and CSV, refresh, one item's raw answers, and the
extra-rater request. Leads and admins only (IsLeadOrAdmin): raters get 403."""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign, Item
from modeling.protocol import MAP_KINDS, SCORE_NAMES
from richhf_site.errors import ApplicationError
from richhf_site.inputs import StrictInput
from richhf_site.permissions import IsLeadOrAdmin
from richhf_site.schema import ErrorResponse

from . import selectors, services


class _LeadApi(APIView):
    permission_classes = [IsLeadOrAdmin]


class StatsEnvelopeOutput(serializers.Serializer):
    campaign = serializers.IntegerField()
    version = serializers.IntegerField()
    computed_at = serializers.DateTimeField(allow_null=True)
    compute_seconds = serializers.FloatField(allow_null=True)
    refresh_requested_at = serializers.DateTimeField(allow_null=True)
    stats = serializers.JSONField(allow_null=True, help_text="The cached payload (see services/recompute.py).")


class ItemCompareOutput(serializers.Serializer):
    item = serializers.IntegerField()
    campaign = serializers.IntegerField()
    prompt = serializers.CharField()
    words = serializers.ListField(child=serializers.CharField())
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    priority = serializers.FloatField()
    image_url = serializers.CharField()
    extra_rater_requested = serializers.BooleanField()
    raters = serializers.ListField(child=serializers.DictField())


class ExtraRaterOutput(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField()
    status = serializers.CharField()
    previous_priority = serializers.FloatField()


def stats_envelope(stats) -> dict:
    return {
        "campaign": stats.campaign_id,
        "version": stats.version,
        "computed_at": stats.computed_at.isoformat() if stats.computed_at else None,
        "compute_seconds": stats.compute_seconds,
        "refresh_requested_at": stats.refresh_requested_at.isoformat() if stats.refresh_requested_at else None,
        "stats": stats.payload or None,
    }


def _stats_or_404(campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    stats = selectors.campaign_stats_get(campaign=campaign)
    if stats is None or not stats.payload:
        raise ApplicationError("No statistics computed yet for this campaign; ask for a refresh.", status_code=404)
    return stats


class CampaignStatsApi(_LeadApi):
    @extend_schema(responses=StatsEnvelopeOutput)
    def get(self, request, campaign_id: int):
        return Response(stats_envelope(_stats_or_404(campaign_id)))


def _csv_rows(payload: dict, table: str) -> tuple[list[str], list[list]]:
    if table == "raters":
        head = [
            "rater_id",
            "username",
            "annotations",
            "median_time_s",
            "mean_points",
            *[f"bias_{s}" for s in SCORE_NAMES],
            "consensus_corr",
            "word_disagreement",
            "outlier",
            "outlier_metrics",
        ]
        rows = [
            [
                r["rater_id"],
                r["username"],
                r["annotations"],
                r["median_time_s"],
                r["mean_points"],
                *[r["bias"][s] for s in SCORE_NAMES],
                r["consensus_corr"],
                r["word_disagreement"],
                r["outlier"],
                " ".join(r["outlier_metrics"]),
            ]
            for r in payload["raters"]
        ]
        return head, rows
    if table == "worst_items":
        head = [
            "item_id",
            "n_raters",
            "mean_maxdiff",
            *[f"maxdiff_{s}" for s in SCORE_NAMES],
            "word_unanimity",
            "implausibility_iou",
            "prompt",
        ]
        rows = [
            [
                w["item_id"],
                w["n_raters"],
                w["mean_maxdiff"],
                *[w["maxdiff"][s] for s in SCORE_NAMES],
                w["word_unanimity"],
                w["implausibility_iou"],
                w["prompt"],
            ]
            for w in payload["worst_items"]
        ]
        return head, rows
    if table == "summary":
        rows = [["progress", k, v] for k, v in payload["progress"].items() if k != "per_day"]
        for s in SCORE_NAMES:
            block = payload["scores"][s]
            md = block["maxdiff"]
            rows += [
                [s, "perfect_share", md["perfect_share"]],
                [s, "good_share", md["good_share"]],
                [s, "paper_perfect_share", md["paper_perfect_share"]],
                [s, "paper_good_share", md["paper_good_share"]],
                [s, f"krippendorff_alpha_{block['alpha']['level']}", block["alpha"]["alpha"]],
                [s, "alpha_ci_low", block["alpha"]["ci_low"]],
                [s, "alpha_ci_high", block["alpha"]["ci_high"]],
            ]
        rows.append(["words", "fleiss_kappa", payload["words"]["fleiss_kappa"]])
        for kind in MAP_KINDS:
            rows += [
                [kind, "mean_pairwise_iou", payload["heatmaps"][kind]["iou"]],
                [kind, "mean_pairwise_cc", payload["heatmaps"][kind]["cc"]],
            ]
        return ["section", "metric", "value"], rows
    raise ApplicationError("table must be one of summary, raters, worst_items", field="table")


class CampaignStatsCsvApi(_LeadApi):
    @extend_schema(
        parameters=[OpenApiParameter("table", str, enum=["summary", "raters", "worst_items"], default="summary")],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request, campaign_id: int):
        stats = _stats_or_404(campaign_id)
        table = request.query_params.get("table", "summary")
        head, rows = _csv_rows(stats.payload, table)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(head)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign_id}-{table}.csv"'
        return response


class CampaignStatsRefreshApi(_LeadApi):
    @extend_schema(request=None, responses={202: StatsEnvelopeOutput})
    def post(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        stats = services.campaign_stats_request_refresh(campaign=campaign)
        return Response(stats_envelope(stats) | {"stats": None}, status=status.HTTP_202_ACCEPTED)


class ItemCompareApi(_LeadApi):
    """One item's raw answers side by side: every rater's points, words and scores."""

    @extend_schema(responses=ItemCompareOutput)
    def get(self, request, item_id: int):
        item = get_object_or_404(Item, pk=item_id)
        open_request = selectors.item_open_extra_rater_request(item=item)
        return Response(
            {
                "item": item.pk,
                "campaign": item.campaign_id,
                "prompt": item.prompt,
                "words": item.words,
                "width": item.width,
                "height": item.height,
                "priority": item.priority,
                "image_url": reverse("api:item-image", args=[item.pk]),
                "extra_rater_requested": open_request is not None,
                "raters": [
                    {
                        "username": a.rater.username,
                        "implausible_points": a.implausible_points,
                        "misaligned_points": a.misaligned_points,
                        "misaligned_words": a.misaligned_words,
                        "scores": a.scores(),
                        "time_spent_ms": a.time_spent_ms,
                    }
                    for a in selectors.item_annotations_for_compare(item=item)
                ],
            }
        )


class ExtraRaterRequestApi(_LeadApi):
    class Input(StrictInput):
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=Input, responses={201: ExtraRaterOutput, 409: ErrorResponse})
    def post(self, request, item_id: int):
        get_object_or_404(Item, pk=item_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        req = services.extra_rater_request(
            item_id=item_id, requested_by=request.user, reason=data.validated_data["reason"]
        )
        return Response(
            {"id": req.pk, "item": item_id, "status": req.status, "previous_priority": req.previous_priority},
            status=status.HTTP_201_CREATED,
        )
