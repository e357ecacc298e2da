"""Rater quality control API. Reads and actions: leads and admins (raters get 403). The policy:
leads read it, admins change it. Every action is checked and logged on the server."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from richhf_site.errors import ApplicationError
from richhf_site.inputs import JSONIntegerField, JSONNumberField, JSONStringField, StrictInput
from richhf_site.permissions import IsAdmin, IsLeadOrAdmin

from . import selectors
from .models import Mode, QualityAction, QualityRun
from .services import actions, policy
from .services.recompute import quality_run_request


class _LeadApi(APIView):
    permission_classes = [IsLeadOrAdmin]


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign, pk=campaign_id)


def _rater(campaign: Campaign, rater_id: int):
    user = get_user_model().objects.filter(pk=rater_id).first()
    if user is None:
        raise ApplicationError("No such rater.", field="rater_id", status_code=404)
    return user


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _user(u) -> str | None:
    return u.username if u is not None else None


def action_out(a: QualityAction) -> dict[str, Any]:
    return {
        "id": a.pk,
        "kind": a.kind,
        "state": a.state,
        "rater_id": a.rater_id,
        "rater": _user(a.rater),
        "item_id": a.item_id,
        "annotation_ids": a.annotation_ids,
        "reason": a.reason,
        "automatic": a.automatic,
        "run_id": a.run_id,
        "created_at": a.created_at,
        "created_by": _user(a.created_by),
        "applied_at": a.applied_at,
        "applied_by": _user(a.applied_by),
        "dismissed_at": a.dismissed_at,
        "dismissed_by": _user(a.dismissed_by),
        "undone_at": a.undone_at,
        "undone_by": _user(a.undone_by),
    }


def run_out(run: QualityRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.pk,
        "state": run.state,
        "progress": run.progress,
        "stage": run.stage,
        "trigger": run.trigger,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "n_answers": run.n_answers,
        "n_raters": run.n_raters,
        "median_time_ms": run.median_time_ms,
        "error": run.error,
    }


POLICY_FIELDS = (
    "min_answers",
    "reliability_threshold",
    "gold_threshold",
    "speed_factor",
    "fast_share_threshold",
    "pause_mode",
    "exclude_mode",
    "redundancy_mode",
    "redundancy_threshold",
    "redundancy_cap",
)


def policy_out(p) -> dict[str, Any]:
    return {name: getattr(p, name) for name in POLICY_FIELDS}


class QualitySummaryApi(_LeadApi):
    """Per rater: the latest figures (reliability, gold accuracy, speed, flags), pause state and
    open proposals; the campaign's policy, latest run and open item proposals."""

    @extend_schema(responses=serializers.DictField())
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        item_proposals = QualityAction.objects.filter(campaign=campaign, state="proposed", item__isnull=False)
        return Response(
            {
                "campaign": campaign.pk,
                "policy": policy_out(selectors.policy_get(campaign=campaign)),
                "run": run_out(selectors.latest_run(campaign=campaign)),
                "last_done_run": run_out(selectors.latest_done_run(campaign=campaign)),
                "raters": selectors.rater_summary(campaign=campaign),
                "item_proposals": [action_out(a) for a in item_proposals],
            }
        )


class QualityHistoryApi(_LeadApi):
    """Every rater's snapshots, oldest first (?rater_id= for one rater): the trend data."""

    @extend_schema(responses=serializers.DictField())
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        raw = request.query_params.get("rater_id")
        rater_id = None
        if raw is not None:
            if not raw.isdigit():
                raise ApplicationError("rater_id must be a positive integer", field="rater_id")
            rater_id = int(raw)
        return Response(
            {"campaign": campaign.pk, "snapshots": list(selectors.rater_history(campaign=campaign, rater_id=rater_id))}
        )


class QualityAuditApi(_LeadApi):
    @extend_schema(responses=serializers.DictField())
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        return Response(
            {"campaign": campaign.pk, "actions": [action_out(a) for a in selectors.audit_log(campaign=campaign)[:500]]}
        )


class QualityRunApi(_LeadApi):
    """POST: queue a recompute now (debounced: a queued run is returned as is)."""

    @extend_schema(request=None, responses=serializers.DictField())
    def post(self, request, campaign_id: int):
        run = quality_run_request(campaign=_campaign(campaign_id), trigger="manual", by=request.user)
        return Response(run_out(run), status=status.HTTP_202_ACCEPTED)


class QualityRunDetailApi(_LeadApi):
    @extend_schema(responses=serializers.DictField())
    def get(self, request, campaign_id: int, run_id: int):
        run = get_object_or_404(QualityRun, pk=run_id, campaign_id=campaign_id)
        return Response(run_out(run))


class RaterActionInput(StrictInput):
    rater_id = JSONIntegerField(min_value=1)
    reason = JSONStringField(max_length=500, required=False, allow_blank=True, default="")


def _action_response(result: actions.ActionResult) -> Response:
    if result.action is None:
        return Response({"created": False, "action": None}, status=status.HTTP_200_OK)
    code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return Response({"created": result.created, "action": action_out(result.action)}, status=code)


class RaterPauseApi(_LeadApi):
    """Pause a rater: no new leases, their open leases released. 201 with the audit entry; 200
    with created=false when they were already paused (another lead was first)."""

    @extend_schema(request=RaterActionInput, responses=serializers.DictField())
    def post(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(RaterActionInput, request.data)
        rater = _rater(campaign, data["rater_id"])
        return _action_response(
            actions.rater_pause_action(campaign=campaign, rater=rater, reason=data["reason"], by=request.user)
        )


class RaterResumeApi(_LeadApi):
    @extend_schema(request=RaterActionInput, responses=serializers.DictField())
    def post(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(RaterActionInput, request.data)
        rater = _rater(campaign, data["rater_id"])
        return _action_response(actions.rater_resume_action(campaign=campaign, rater=rater, by=request.user))


class ExcludeInput(StrictInput):
    rater_id = JSONIntegerField(min_value=1, required=False)
    annotation_ids = serializers.ListField(child=JSONIntegerField(min_value=1), required=False, max_length=10000)
    reason = JSONStringField(max_length=500, required=False, allow_blank=True, default="")


class ExcludeApi(_LeadApi):
    """Exclude all of a rater's answers (rater_id) or chosen ones (annotation_ids), with a
    reason. Their items return to the queue and their aggregates are recomputed."""

    @extend_schema(request=ExcludeInput, responses=serializers.DictField())
    def post(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(ExcludeInput, request.data)
        if ("rater_id" in data) == ("annotation_ids" in data):
            raise ApplicationError("Give either rater_id or annotation_ids.", field="annotation_ids")
        rater = _rater(campaign, data["rater_id"]) if "rater_id" in data else None
        return _action_response(
            actions.answers_exclude_action(
                campaign=campaign,
                rater=rater,
                annotation_ids=data.get("annotation_ids"),
                reason=data["reason"],
                by=request.user,
            )
        )


class ActionUndoApi(_LeadApi):
    """Undo an applied exclusion or pause; the aggregates follow."""

    @extend_schema(request=None, responses=serializers.DictField())
    def post(self, request, campaign_id: int, action_id: int):
        action = actions.action_undo(campaign=_campaign(campaign_id), action_id=action_id, by=request.user)
        return Response(action_out(action))


class ProposalApplyApi(_LeadApi):
    @extend_schema(request=None, responses=serializers.DictField())
    def post(self, request, campaign_id: int, action_id: int):
        return _action_response(
            actions.proposal_apply(campaign=_campaign(campaign_id), action_id=action_id, by=request.user)
        )


class ProposalDismissApi(_LeadApi):
    @extend_schema(request=None, responses=serializers.DictField())
    def post(self, request, campaign_id: int, action_id: int):
        action = actions.proposal_dismiss(campaign=_campaign(campaign_id), action_id=action_id, by=request.user)
        return Response(action_out(action))


class PolicyInput(StrictInput):
    min_answers = JSONIntegerField(min_value=1, max_value=1000, required=False)
    reliability_threshold = JSONNumberField(min_value=0, max_value=1, required=False)
    gold_threshold = JSONNumberField(min_value=0, max_value=1, required=False)
    speed_factor = JSONNumberField(min_value=0.01, max_value=1, required=False)
    fast_share_threshold = JSONNumberField(min_value=0, max_value=1, required=False)
    pause_mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    exclude_mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    redundancy_mode = serializers.ChoiceField(choices=Mode.choices, required=False)
    redundancy_threshold = JSONNumberField(min_value=0, max_value=1, required=False)
    redundancy_cap = JSONIntegerField(min_value=0, max_value=20, required=False)


class PolicyApi(APIView):
    """GET: leads and admins. PATCH: admins only (configuration)."""

    def get_permissions(self):
        return [IsAdmin()] if self.request.method == "PATCH" else [IsLeadOrAdmin()]

    @extend_schema(responses=serializers.DictField())
    def get(self, request, campaign_id: int):
        return Response(policy_out(selectors.policy_get(campaign=_campaign(campaign_id))))

    @extend_schema(request=PolicyInput, responses=serializers.DictField())
    def patch(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(PolicyInput, request.data)
        return Response(policy_out(policy.policy_update(campaign=campaign, changes=data, by=request.user)))
