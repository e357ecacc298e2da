"""Dashboard API: the cached payload as JSON and CSV, refresh, one item's raw answers, and the
extra-rater request. Leads and admins only (IsLeadOrAdmin): raters get 403."""

from __future__ import annotations

import csv
import io

from django.http import FileResponse, Http404, HttpResponse
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
    refresh_progress = serializers.FloatField(help_text="0..1 while a recompute runs; 1 when done.")
    refresh_stage = serializers.CharField()
    n_annotations = serializers.IntegerField(help_text="Counted answers the cached figures were computed from.")
    stats = serializers.JSONField(allow_null=True, help_text="The cached payload (see services/recompute.py).")


class FreshnessOutput(serializers.Serializer):
    campaign = serializers.IntegerField()
    version = serializers.IntegerField(allow_null=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    refresh_requested_at = serializers.DateTimeField(allow_null=True)
    refresh_progress = serializers.FloatField()
    refresh_stage = serializers.CharField()
    n_annotations = serializers.IntegerField(help_text="Counted answers the cached figures were computed from.")
    n_annotations_now = serializers.IntegerField(
        help_text="Counted answers now (gold items and excluded answers left out)."
    )
    stale = serializers.BooleanField(help_text="New answers since the last computation, or an older payload layout.")


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
    radius_fraction = serializers.FloatField(help_text="Disk radius as a fraction of the image height.")
    raters = serializers.ListField(child=serializers.DictField())
    maps = serializers.DictField(help_text="URLs of the human aggregate and the model's predicted maps (null if none).")


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
        "refresh_progress": stats.refresh_progress,
        "refresh_stage": stats.refresh_stage,
        "n_annotations": stats.n_annotations,
        "stats": stats.payload or None,
    }


def stats_freshness(*, campaign: Campaign, stats) -> dict:
    """What the page polls: is the cache stale, is a recompute running and how far along."""
    now_count = selectors.campaign_counted_answers(campaign=campaign)
    computed = bool(stats and stats.computed_at)
    return {
        "campaign": campaign.pk,
        "version": stats.version if stats else None,
        "computed_at": stats.computed_at.isoformat() if computed else None,
        "refresh_requested_at": (
            stats.refresh_requested_at.isoformat() if stats and stats.refresh_requested_at else None
        ),
        "refresh_progress": stats.refresh_progress if stats else 0.0,
        "refresh_stage": stats.refresh_stage if stats else "",
        "n_annotations": stats.n_annotations if computed else 0,
        "n_annotations_now": now_count,
        "stale": not computed or stats.version != services.STATS_VERSION or stats.n_annotations != now_count,
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
    if table == "generators":
        return _generator_rows(payload)
    if table == "generator_pairs":
        head = ["score", "generator_a", "generator_b", "n_a", "n_b", "diff", "ci_low", "ci_high", "p", "p_holm"]
        head.append("significant")
        gen = payload.get("generators") or {"pairs": []}
        keys = ["score", "a", "b", "n_a", "n_b", "diff", "ci_low", "ci_high", "p", "p_holm", "significant"]
        return head, [[pr[k] for k in keys] for pr in gen["pairs"]]
    raise ApplicationError(f"table must be one of {', '.join(CSV_TABLES)}", field="table")


CSV_TABLES = ("summary", "raters", "worst_items", "generators", "generator_pairs")


def _generator_rows(payload: dict) -> tuple[list[str], list[list]]:
    """Long format: one row per generator and figure (source "human" or "model estimate")."""
    head = ["generator", "source", "metric", "name", "value", "ci_low", "ci_high", "n"]
    rows: list[list] = []
    gen = payload.get("generators") or {"rows": []}
    for r in gen["rows"]:
        g = r["generator"]
        for s in SCORE_NAMES:
            v = r["scores"][s]
            rows.append([g, "human", "mean_normalised_score", s, v["mean"], v["ci_low"], v["ci_high"], v["n"]])
        for s in SCORE_NAMES:
            v = r["estimate"][s]
            if v["n"]:
                rows.append(
                    [g, "model estimate", "mean_normalised_score", s, v["mean"], v["ci_low"], v["ci_high"], v["n"]]
                )
        v = r["implausible_share"]
        rows.append([g, "human", "implausible_share", "", v["mean"], v["ci_low"], v["ci_high"], v["n"]])
        for kind in MAP_KINDS:
            v = r["area"][kind]
            rows.append([g, "human", "mean_heatmap_area", kind, v["mean"], v["ci_low"], v["ci_high"], v["n"]])
        for w in r["top_words"]:
            rows.append([g, "human", "misaligned_word", w["word"], w["count"], "", "", r["n_rated"]])
    return head, rows


class CampaignStatsCsvApi(_LeadApi):
    @extend_schema(
        parameters=[OpenApiParameter("table", str, enum=list(CSV_TABLES), default="summary")],
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


class CampaignStatsFreshnessApi(_LeadApi):
    """Cheap to poll (two small queries): whether the cached figures are stale and how far a
    running recompute has got. The page enqueues a refresh when stale and reloads the payload
    once computed_at changes."""

    @extend_schema(responses=FreshnessOutput)
    def get(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        return Response(stats_freshness(campaign=campaign, stats=selectors.campaign_stats_get(campaign=campaign)))


MAP_SOURCES = ("human", "model")


def _item_map_urls(item: Item) -> dict:
    """item comes from selectors.item_for_compare (the maps_* annotations)."""

    def urls(source: str) -> dict[str, str]:
        return {kind: reverse("dashboard:api-item-map", args=[item.pk, source, kind]) for kind in MAP_KINDS}

    human_n = getattr(item, "maps_human_n", None)
    model_version = getattr(item, "maps_model_version", None)
    return {
        "human": urls("human") if human_n is not None else None,
        "human_n_annotations": human_n,
        "model": urls("model") if model_version is not None else None,
        "model_version": model_version,
        "active_version": getattr(item, "maps_active_version", None),
    }


class ItemMapApi(_LeadApi):
    """One heatmap PNG of an item (grey: 0 = nothing, 255 = the maximum): the human aggregate
    ("human") or the active model's prediction ("model"). 404 when there is none."""

    @extend_schema(
        parameters=[
            OpenApiParameter("source", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(MAP_SOURCES)),
            OpenApiParameter("kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(MAP_KINDS)),
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request, item_id: int, source: str, kind: str):
        item = get_object_or_404(Item, pk=item_id)
        if source not in MAP_SOURCES or kind not in MAP_KINDS:
            raise Http404
        field = selectors.item_map_file(item=item, source=source, kind=kind)
        if field is None:
            raise Http404
        response = FileResponse(field.open("rb"), content_type="image/png")
        response["Cache-Control"] = "private, no-store"
        return response


class ItemCompareApi(_LeadApi):
    """One item's raw answers side by side: every rater's points, words and scores."""

    @extend_schema(responses=ItemCompareOutput)
    def get(self, request, item_id: int):
        try:
            item = selectors.item_for_compare(item_id=item_id)
        except Item.DoesNotExist as exc:
            raise Http404 from exc
        open_request = selectors.item_open_extra_rater_request(
            item=item, n_annotations=getattr(item, "n_annotations_now", None) or 0
        )
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
                "radius_fraction": item.campaign.radius_fraction,
                "maps": _item_map_urls(item),
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
