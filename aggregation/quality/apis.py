"""Rater quality control API. Reads and actions: leads and admins (raters get 403). The policy:
leads read it, admins change it. Every action is checked and logged on the server."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from richhf_site.errors import ApplicationError
from richhf_site.inputs import JSONIntegerField, JSONNumberField, JSONStringField, StrictInput
from richhf_site.permissions import IsAdmin, IsLeadOrAdmin
from richhf_site.schema import ErrorResponse

from . import selectors
from .models import ActionKind, ActionState, Mode, QualityRun, RunState
from .selectors import audit_log
from .services import actions, policy
from .services.recompute import quality_run_request


class _LeadApi(APIView):
    permission_classes = [IsLeadOrAdmin]


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign, pk=campaign_id)


def _rater(rater_id: int):
    user = get_user_model().objects.filter(pk=rater_id).first()
    if user is None:
        raise ApplicationError("No such rater.", field="rater_id", status_code=404)
    return user


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ActionOutput(serializers.Serializer):
    """One entry of the audit log (a proposal while state is `proposed`). A rater action names
    the rater and no item; an extra-rater action names the item and no rater."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ActionKind.choices)
    state = serializers.ChoiceField(choices=ActionState.choices)
    rater_id = serializers.IntegerField(allow_null=True)
    rater = serializers.CharField(source="rater.username", allow_null=True, help_text="The rater's username.")
    item_id = serializers.IntegerField(allow_null=True)
    annotation_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="The answers an exclusion changed (or would change)."
    )
    reason = serializers.CharField()
    automatic = serializers.BooleanField(help_text="Applied by the recompute under the policy.")
    run_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    applied_by = serializers.CharField(source="applied_by.username", allow_null=True)
    dismissed_at = serializers.DateTimeField(allow_null=True)
    dismissed_by = serializers.CharField(source="dismissed_by.username", allow_null=True)
    undone_at = serializers.DateTimeField(allow_null=True)
    undone_by = serializers.CharField(source="undone_by.username", allow_null=True)


class ActionResultOutput(serializers.Serializer):
    """created=false: nothing new was written (another lead was first, or nothing was left to
    change); `action` is then the entry already there, or null."""

    created = serializers.BooleanField()
    action = ActionOutput(allow_null=True)


class RunOutput(serializers.Serializer):
    """One recompute job; `progress` goes 0..1 while it runs."""

    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=RunState.choices)
    progress = serializers.FloatField(min_value=0, max_value=1)
    stage = serializers.CharField(allow_blank=True)
    trigger = serializers.CharField(help_text="manual, beat or answers")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    n_answers = serializers.IntegerField()
    n_raters = serializers.IntegerField()
    median_time_ms = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class PolicyOutput(serializers.Serializer):
    min_answers = serializers.IntegerField()
    reliability_threshold = serializers.FloatField()
    gold_threshold = serializers.FloatField()
    speed_factor = serializers.FloatField()
    fast_share_threshold = serializers.FloatField()
    pause_mode = serializers.ChoiceField(choices=Mode.choices)
    exclude_mode = serializers.ChoiceField(choices=Mode.choices)
    redundancy_mode = serializers.ChoiceField(choices=Mode.choices)
    redundancy_threshold = serializers.FloatField()
    redundancy_cap = serializers.IntegerField()


class FiguresOutput(serializers.Serializer):
    """One rater's figures in one run (docs/quality.md); a component is null when the rater has
    too little overlap with co-raters to tell."""

    n_answers = serializers.IntegerField()
    n_excluded = serializers.IntegerField()
    keyword_competence = serializers.FloatField(allow_null=True)
    score_bias = serializers.FloatField(allow_null=True, help_text="Likert points vs the co-raters' mean.")
    score_consistency = serializers.FloatField(allow_null=True, help_text="Pearson r with the co-raters' mean.")
    map_agreement = serializers.FloatField(allow_null=True)
    reliability = serializers.FloatField(allow_null=True)
    gold_accuracy = serializers.FloatField(allow_null=True)
    n_gold = serializers.IntegerField()
    median_time_ms = serializers.FloatField(allow_null=True)
    fast_share = serializers.FloatField(allow_null=True)
    fast_answer_ids = serializers.ListField(child=serializers.IntegerField())
    flags = serializers.ListField(child=serializers.CharField(), help_text="low_reliability, fast, low_gold")


class SnapshotOutput(FiguresOutput):
    rater_id = serializers.IntegerField()
    run_id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()


class RaterProposalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ActionKind.choices)
    reason = serializers.CharField()


class RaterRowOutput(serializers.Serializer):
    rater_id = serializers.IntegerField()
    username = serializers.CharField()
    paused = serializers.BooleanField()
    paused_at = serializers.DateTimeField(allow_null=True)
    paused_reason = serializers.CharField(allow_blank=True)
    counting_answers = serializers.IntegerField(help_text="Answers not excluded.")
    figures = FiguresOutput(allow_null=True, help_text="From the latest finished run; null before one.")
    proposals = RaterProposalOutput(many=True)


_CONFLICT = OpenApiResponse(
    ErrorResponse, description="The action is in a state that forbids this (`code` says which)."
)


class QualitySummaryApi(_LeadApi):
    """Per rater: the latest figures (reliability, gold accuracy, speed, flags), pause state and
    open proposals; the campaign's policy, latest run and open item proposals."""

    class Output(serializers.Serializer):
        campaign = serializers.IntegerField()
        policy = PolicyOutput()
        run = RunOutput(allow_null=True, help_text="The latest run in any state; null before the first.")
        last_done_run = RunOutput(allow_null=True, help_text="The latest finished run: the figures are its.")
        raters = RaterRowOutput(many=True)
        item_proposals = ActionOutput(many=True)

    @extend_schema(responses=Output)
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        item_proposals = audit_log(campaign=campaign).filter(state=ActionState.PROPOSED, item__isnull=False)
        data = {
            "campaign": campaign.pk,
            "policy": selectors.policy_get(campaign=campaign),
            "run": selectors.latest_run(campaign=campaign),
            "last_done_run": selectors.latest_done_run(campaign=campaign),
            "raters": selectors.rater_summary(campaign=campaign),
            "item_proposals": item_proposals,
        }
        return Response(self.Output(data).data)


class QualityHistoryApi(_LeadApi):
    """Every rater's snapshots, oldest first (?rater_id= for one rater): the trend data."""

    class Output(serializers.Serializer):
        campaign = serializers.IntegerField()
        snapshots = SnapshotOutput(many=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("rater_id", int, description="Only this rater's snapshots.", required=False),
        ],
        responses=Output,
    )
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        raw = request.query_params.get("rater_id")
        rater_id = None
        if raw is not None:
            if not raw.isdigit():
                raise ApplicationError("rater_id must be a positive integer", field="rater_id")
            rater_id = int(raw)
        snapshots = list(selectors.rater_history(campaign=campaign, rater_id=rater_id))
        return Response(self.Output({"campaign": campaign.pk, "snapshots": snapshots}).data)


class QualityAuditApi(_LeadApi):
    """The latest 500 actions, newest first."""

    class Output(serializers.Serializer):
        campaign = serializers.IntegerField()
        actions = ActionOutput(many=True)

    @extend_schema(responses=Output)
    def get(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        return Response(self.Output({"campaign": campaign.pk, "actions": audit_log(campaign=campaign)[:500]}).data)


class QualityRunApi(_LeadApi):
    """POST: queue a recompute now (debounced: a queued run is returned as is)."""

    @extend_schema(request=None, responses={202: RunOutput})
    def post(self, request, campaign_id: int):
        run = quality_run_request(campaign=_campaign(campaign_id), trigger="manual", by=request.user)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class QualityRunDetailApi(_LeadApi):
    @extend_schema(responses=RunOutput)
    def get(self, request, campaign_id: int, run_id: int):
        run = get_object_or_404(QualityRun, pk=run_id, campaign_id=campaign_id)
        return Response(RunOutput(run).data)


class RaterActionInput(StrictInput):
    rater_id = JSONIntegerField(min_value=1)
    reason = JSONStringField(max_length=500, required=False, allow_blank=True, default="")


def _action_response(result: actions.ActionResult) -> Response:
    code = status.HTTP_201_CREATED if result.action is not None and result.created else status.HTTP_200_OK
    return Response(ActionResultOutput({"created": result.created, "action": result.action}).data, status=code)


_ACTION_RESPONSES = {
    201: OpenApiResponse(ActionResultOutput, description="Done: `action` is the new audit entry."),
    200: OpenApiResponse(ActionResultOutput, description="Nothing new: created=false (already so)."),
}


class RaterPauseApi(_LeadApi):
    """Pause a rater: no new leases, their open leases released. 201 with the audit entry; 200
    with created=false when they were already paused (another lead was first)."""

    @extend_schema(request=RaterActionInput, responses=_ACTION_RESPONSES)
    def post(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(RaterActionInput, request.data)
        rater = _rater(data["rater_id"])
        return _action_response(
            actions.rater_pause_action(campaign=campaign, rater=rater, reason=data["reason"], by=request.user)
        )


class RaterResumeApi(_LeadApi):
    @extend_schema(request=RaterActionInput, responses=_ACTION_RESPONSES)
    def post(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(RaterActionInput, request.data)
        rater = _rater(data["rater_id"])
        return _action_response(actions.rater_resume_action(campaign=campaign, rater=rater, by=request.user))


class ExcludeInput(StrictInput):
    rater_id = JSONIntegerField(min_value=1, required=False)
    annotation_ids = serializers.ListField(child=JSONIntegerField(min_value=1), required=False, max_length=10000)
    reason = JSONStringField(max_length=500, required=False, allow_blank=True, default="")


class ExcludeApi(_LeadApi):
    """Exclude all of a rater's answers (rater_id) or chosen ones (annotation_ids), with a
    reason. Their items return to the queue and their aggregates are recomputed."""

    @extend_schema(request=ExcludeInput, responses=_ACTION_RESPONSES)
    def post(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(ExcludeInput, request.data)
        if ("rater_id" in data) == ("annotation_ids" in data):
            raise ApplicationError("Give either rater_id or annotation_ids.", field="annotation_ids")
        rater = _rater(data["rater_id"]) if "rater_id" in data else None
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
    """Undo an applied exclusion or pause; the aggregates follow. Undoing twice answers the
    undone action again; 409 for an action that was never applied or cannot be undone."""

    @extend_schema(request=None, responses={200: ActionOutput, 409: _CONFLICT})
    def post(self, request, campaign_id: int, action_id: int):
        action = actions.action_undo(campaign=_campaign(campaign_id), action_id=action_id, by=request.user)
        return Response(ActionOutput(action).data)


class ProposalApplyApi(_LeadApi):
    """Apply a proposal: 201 with the applied action; 409 when it was dismissed or applied already."""

    @extend_schema(request=None, responses={**_ACTION_RESPONSES, 409: _CONFLICT})
    def post(self, request, campaign_id: int, action_id: int):
        return _action_response(
            actions.proposal_apply(campaign=_campaign(campaign_id), action_id=action_id, by=request.user)
        )


class ProposalDismissApi(_LeadApi):
    """Dismiss a proposal (dismissing twice answers it again); 409 when it was applied."""

    @extend_schema(request=None, responses={200: ActionOutput, 409: _CONFLICT})
    def post(self, request, campaign_id: int, action_id: int):
        action = actions.proposal_dismiss(campaign=_campaign(campaign_id), action_id=action_id, by=request.user)
        return Response(ActionOutput(action).data)


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

    @extend_schema(responses=PolicyOutput)
    def get(self, request, campaign_id: int):
        return Response(PolicyOutput(selectors.policy_get(campaign=_campaign(campaign_id))).data)

    @extend_schema(request=PolicyInput, responses=PolicyOutput)
    def patch(self, request, campaign_id: int):
        campaign = _campaign(campaign_id)
        data = _valid(PolicyInput, request.data)
        return Response(PolicyOutput(policy.policy_update(campaign=campaign, changes=data, by=request.user)).data)
