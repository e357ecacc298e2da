"""Thin API views: validate input, call one service or selector, serialize the result."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

from django.conf import settings
from django.core.validators import RegexValidator
from django.db.models import Manager
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from modeling.protocol import SCORE_NAMES
from richhf_site import roles
from richhf_site.errors import ApplicationError
from richhf_site.inputs import JSONBooleanField, JSONIntegerField, JSONNumberField, JSONStringField, StrictInput
from richhf_site.permissions import IsAdmin, IsLeadOrAdmin, IsRater
from richhf_site.schema import ErrorResponse, limit_offset_page

from . import drafts, gold, gold_selectors, hooks, selectors, services
from .models import Assignment, Campaign, Draft
from .services import AnnotationInput

logger = logging.getLogger(__name__)


class CampaignOutput(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "description",
            "raters_per_item",
            "radius_fraction",
            "heatmap_width",
            "heatmap_height",
            "lease_minutes",
            "show_suggestions",
        ]


class ItemForRaterOutput(serializers.Serializer):
    """What a rater needs to annotate: never scores, aggregates or other raters' answers."""

    id = serializers.IntegerField()
    prompt = serializers.CharField()
    words = serializers.ListField(child=serializers.CharField())
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    image_url = serializers.SerializerMethodField()

    def get_image_url(self, item) -> str:
        return reverse("api:item-image", args=[item.pk])


# Serializer context key: the lease payload hooks' values for every assignment of a response.
LEASE_PAYLOADS = "lease_payloads"


def lease_payload_context(assignments: Iterable[Assignment | None]) -> dict[str, Any]:
    """Context for serializing all the assignments of one response: each lease payload hook
    (annotation/hooks.py) runs once for all of them, not once per assignment."""
    return {LEASE_PAYLOADS: hooks.lease_payloads(assignments=[a for a in assignments if a is not None])}


class LeasePayloadField(serializers.JSONField):
    """A field another app adds to each assignment through a lease payload hook (e.g. learning's
    `suggestion`); null where the hook has nothing for the assignment."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def get_attribute(self, instance: Assignment) -> Any:
        return self.context[LEASE_PAYLOADS][self.field_name].get(instance.pk)


class AssignmentListOutput(serializers.ListSerializer):
    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        assignments = list(data.all() if isinstance(data, Manager) else data)
        if LEASE_PAYLOADS not in self.context:
            cast(dict[str, Any], self.context).update(lease_payload_context(assignments))
        return super().to_representation(assignments)


class DraftOutput(serializers.Serializer):
    """The rater's unsaved work on a live lease (annotation/drafts.py)."""

    answer = serializers.JSONField()
    time_spent_ms = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class DraftOfAssignmentField(DraftOutput):
    """The assignment's draft or null. Reads the relation the selectors and services cache
    (select_related("draft"), or "none" for a new or finished lease), so it adds no query there."""

    def get_attribute(self, instance: Assignment) -> Draft | None:
        try:
            return instance.draft
        except Draft.DoesNotExist:
            return None


class AssignmentOutput(serializers.Serializer):
    """One assignment as its rater sees it, plus the fields other apps add through the lease
    payload hooks (learning's `suggestion`)."""

    id = serializers.IntegerField()
    state = serializers.CharField()
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    skip_reason = serializers.CharField()
    campaign = serializers.IntegerField(source="item.campaign_id")
    item = ItemForRaterOutput()
    draft = DraftOfAssignmentField(allow_null=True, read_only=True)

    class Meta:
        list_serializer_class = AssignmentListOutput

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # The hooks' fields follow this class's own, ahead of a subclass's (the history's answer).
        own = {name: fields.pop(name) for name in AssignmentOutput._declared_fields}
        return {**own, **{name: LeasePayloadField() for name in hooks.lease_payload_fields()}, **fields}

    def to_representation(self, instance: Assignment) -> dict[str, Any]:
        if LEASE_PAYLOADS not in self.context:
            cast(dict[str, Any], self.context).update(lease_payload_context([instance]))
        return super().to_representation(instance)


class OwnAnnotationOutput(serializers.Serializer):
    implausible_points = serializers.JSONField()
    misaligned_points = serializers.JSONField()
    misaligned_words = serializers.JSONField()
    plausibility = serializers.IntegerField()
    alignment = serializers.IntegerField()
    aesthetics = serializers.IntegerField()
    overall = serializers.IntegerField()
    time_spent_ms = serializers.IntegerField()
    suggestion_shown = serializers.BooleanField()
    suggestion_accepted = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class OwnAssignmentOutput(AssignmentOutput):
    annotation = serializers.SerializerMethodField()

    def get_annotation(self, assignment) -> dict | None:
        annotation = getattr(assignment, "annotation", None) if assignment.state == "submitted" else None
        return OwnAnnotationOutput(annotation).data if annotation else None


class MeOutput(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.ChoiceField(choices=roles.ALL_ROLES))


class MeApi(APIView):
    """Who the caller is and which roles they hold (the page uses it to pick a view)."""

    @extend_schema(responses=MeOutput)
    def get(self, request):
        return Response({"username": request.user.get_username(), "roles": sorted(roles.user_roles(request.user))})


class CampaignListApi(APIView):
    @extend_schema(responses=CampaignOutput(many=True))
    def get(self, request):
        campaigns = selectors.campaigns_for_user(user=request.user)
        return Response(CampaignOutput(campaigns, many=True).data)


def _rater_campaign(request, campaign_id: int) -> Campaign:
    campaign = selectors.campaign_for_rater(user=request.user, campaign_id=campaign_id)
    if campaign is None:
        # Same answer for "does not exist" and "not invited": no existence leak.

        raise ApplicationError(_("No such campaign among yours."), status_code=404)
    return campaign


class NextItemInput(StrictInput):
    lookahead = JSONIntegerField(min_value=0, max_value=services.MAX_LOOKAHEAD, required=False, default=0)


class NextItemOutput(serializers.Serializer):
    assignment = AssignmentOutput(allow_null=True)
    upcoming = AssignmentOutput(many=True)
    status = serializers.ChoiceField(
        choices=["leased", "new", "done", "busy", "paused", "not_qualified", "qualification_unavailable"]
    )
    detail = serializers.CharField(help_text="A sentence for the rater, in their language.")


def next_item_detail(reason: str) -> str:
    """The rater's sentence for each NextItemResult.reason, in the active language."""
    return {
        "new": _("Nothing to do yet: no item is waiting for you in this campaign. Check again later."),
        "done": _("Nothing to do: you have annotated or skipped every item that still needs a rater."),
        "busy": _("Every item left is being annotated by other raters right now; try again in a few minutes."),
        "paused": _("Your work in this campaign is paused. Ask the campaign lead why."),
        "not_qualified": _(
            "You did not pass this campaign's qualification, so it has no items for you. A project admin can let you try again."
        ),
        "qualification_unavailable": _(
            "This campaign needs a qualification first, but it has no practice items left for you. "
            "Ask the campaign lead."
        ),
    }[reason]


class NextItemApi(APIView):
    """Returns the caller's open lease, or leases the next item (POST: it may create a lease)."""

    permission_classes = [IsRater]

    @extend_schema(request=NextItemInput, responses=NextItemOutput)
    def post(self, request, campaign_id: int):
        serializer = NextItemInput(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        # The service checks membership, fetches the campaign and locks in one statement.
        result = services.assignment_next_for_member(
            rater=request.user, campaign_id=campaign_id, lookahead=serializer.validated_data["lookahead"]
        )
        if result.assignment is None:
            return Response(
                {
                    "assignment": None,
                    "upcoming": [],
                    "status": result.reason,
                    "detail": next_item_detail(result.reason),
                }
            )
        context = lease_payload_context([result.assignment, *result.upcoming])
        return Response(
            {
                "assignment": AssignmentOutput(result.assignment, context=context).data,
                "upcoming": AssignmentOutput(result.upcoming, many=True, context=context).data,
                "status": "leased",
                "detail": _("Item leased."),
            }
        )


class HeartbeatApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(request=None, responses={200: AssignmentOutput, 409: ErrorResponse})
    def post(self, request, assignment_id: int):
        assignment = services.assignment_heartbeat(assignment_id=assignment_id, rater=request.user)
        return Response(AssignmentOutput(assignment).data)


class PointField(serializers.ListField):
    """A point [x, y] normalised to the original image: two JSON numbers inside [0, 1]."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=JSONNumberField(min_value=0.0, max_value=1.0), min_length=2, max_length=2, **kwargs)


class ScoresInput(StrictInput):
    plausibility = JSONIntegerField(min_value=1, max_value=5)
    alignment = JSONIntegerField(min_value=1, max_value=5)
    aesthetics = JSONIntegerField(min_value=1, max_value=5)
    overall = JSONIntegerField(min_value=1, max_value=5)


@extend_schema_field(
    {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 1000, "uniqueItems": True}
)
class UniqueWordIndicesField(serializers.ListField):
    """Word indices of the prompt, each at most once (the schema says uniqueItems)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=JSONIntegerField(min_value=0), max_length=1000, **kwargs)

    def to_internal_value(self, data: Any) -> list[int]:
        value = super().to_internal_value(data)
        if len(set(value)) != len(value):
            raise serializers.ValidationError("word indices must be unique")
        return value


class SubmitInput(StrictInput):
    """Typed as JSON: coordinates are numbers, scores and word indices integers, and a key
    this serializer does not know is refused at any level ("scores.sharpness")."""

    implausible_points = serializers.ListField(child=PointField(), max_length=settings.RICHHF_MAX_POINTS_PER_KIND)
    misaligned_points = serializers.ListField(child=PointField(), max_length=settings.RICHHF_MAX_POINTS_PER_KIND)
    misaligned_words = UniqueWordIndicesField()
    scores = ScoresInput()
    time_spent_ms = JSONIntegerField(min_value=0, max_value=24 * 3600 * 1000, required=False, default=0)
    suggestion_shown = JSONBooleanField(required=False, default=False)
    suggestion_accepted = JSONBooleanField(required=False, default=False)


class FeedbackOutput(serializers.Serializer):
    """After a qualification answer: the reference beside the rater's answer (gold.gold_feedback)."""

    quality = serializers.FloatField()
    components = serializers.JSONField()
    reference = serializers.JSONField()
    yours = serializers.JSONField()
    qualification = serializers.JSONField()


class SubmitOutput(serializers.Serializer):
    assignment = OwnAssignmentOutput()
    created = serializers.BooleanField()
    # Always present, null except after a qualification answer: a honeypot's response has
    # the same shape as any other.
    feedback = FeedbackOutput(allow_null=True)


class SubmitApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(request=SubmitInput, responses={200: SubmitOutput, 201: SubmitOutput, 409: ErrorResponse})
    def post(self, request, assignment_id: int):
        if not isinstance(request.data, dict):
            raise ApplicationError(_("The body must be a JSON object."), field="non_field_errors")
        serializer = SubmitInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        annotation, created = services.annotation_submit(
            assignment_id=assignment_id,
            rater=request.user,
            data=AnnotationInput(
                implausible_points=data["implausible_points"],
                misaligned_points=data["misaligned_points"],
                misaligned_words=data["misaligned_words"],
                scores={name: data["scores"][name] for name in SCORE_NAMES},
                time_spent_ms=data["time_spent_ms"],
                suggestion_shown=data["suggestion_shown"],
                suggestion_accepted=data["suggestion_accepted"],
            ),
        )
        assignment = annotation.assignment
        return Response(
            {
                "assignment": OwnAssignmentOutput(assignment).data,
                "created": created,
                "feedback": gold_selectors.gold_feedback(annotation=annotation),
            },
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DraftScoresInput(StrictInput):
    """A draft's scores: each 1..5 or null (not chosen yet), each optional."""

    plausibility = JSONIntegerField(min_value=1, max_value=5, allow_null=True, required=False)
    alignment = JSONIntegerField(min_value=1, max_value=5, allow_null=True, required=False)
    aesthetics = JSONIntegerField(min_value=1, max_value=5, allow_null=True, required=False)
    overall = JSONIntegerField(min_value=1, max_value=5, allow_null=True, required=False)


class DraftAnswerInput(StrictInput):
    """The submission's shape with every part optional (a draft is work in progress); the
    same bounds as a submission, so a draft that restores is one that could be submitted."""

    implausible_points = serializers.ListField(
        child=PointField(), max_length=settings.RICHHF_MAX_POINTS_PER_KIND, required=False
    )
    misaligned_points = serializers.ListField(
        child=PointField(), max_length=settings.RICHHF_MAX_POINTS_PER_KIND, required=False
    )
    misaligned_words = UniqueWordIndicesField(required=False)
    scores = DraftScoresInput(required=False)
    suggestion_accepted = JSONBooleanField(required=False)


class DraftInput(StrictInput):
    answer = DraftAnswerInput()
    time_spent_ms = JSONIntegerField(min_value=0, max_value=24 * 3600 * 1000)


class DraftSavedOutput(serializers.Serializer):
    saved_at = serializers.DateTimeField()


class DraftApi(APIView):
    """The caller's draft of one live lease: PUT saves (replaces) it, GET reads it, DELETE drops it.

    Another rater's assignment is a 404, as a missing one is; a lease that is no longer live
    takes no draft (409)."""

    permission_classes = [IsRater]

    @extend_schema(responses={200: DraftOutput, 404: ErrorResponse}, operation_id="assignment_draft_retrieve")
    def get(self, request, assignment_id: int):
        draft = selectors.draft_of_rater(rater=request.user, assignment_id=assignment_id)
        if draft is None:
            raise ApplicationError(_("No draft for this assignment."), status_code=404)
        return Response(DraftOutput(draft).data)

    @extend_schema(
        request=DraftInput,
        responses={200: DraftSavedOutput, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse},
        operation_id="assignment_draft_save",
    )
    def put(self, request, assignment_id: int):
        if not isinstance(request.data, dict):
            raise ApplicationError(_("The body must be a JSON object."), field="non_field_errors")
        serializer = DraftInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        draft = drafts.draft_save(
            assignment_id=assignment_id,
            rater=request.user,
            answer=_plain(data["answer"]),
            time_spent_ms=data["time_spent_ms"],
        )
        return Response(DraftSavedOutput({"saved_at": draft.updated_at}).data)

    @extend_schema(request=None, responses={204: None, 404: ErrorResponse}, operation_id="assignment_draft_delete")
    def delete(self, request, assignment_id: int):
        drafts.draft_delete(assignment_id=assignment_id, rater=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _plain(value: Any) -> Any:
    """Validated data (OrderedDicts, nested) as plain JSON values, to store as given."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class SkipInput(StrictInput):
    # allow_blank=False refuses "" and all-whitespace (after trimming); min_length and the
    # pattern say the same in the schema, so the documented request and the server agree.
    reason = JSONStringField(
        allow_blank=False,
        min_length=1,
        max_length=500,
        validators=[RegexValidator(r"\S", gettext_lazy("Say why you skip this item."))],
    )


class SkipApi(APIView):
    permission_classes = [IsRater]

    @extend_schema(request=SkipInput, responses={200: AssignmentOutput, 409: ErrorResponse})
    def post(self, request, assignment_id: int):
        serializer = SkipInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        assignment = services.assignment_skip(
            assignment_id=assignment_id, rater=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(AssignmentOutput(assignment).data)


class MyAssignmentListApi(APIView):
    """The caller's own history, newest first, with their own answers."""

    class Pagination(LimitOffsetPagination):
        default_limit = 50
        max_limit = 500

    @extend_schema(
        parameters=[
            OpenApiParameter("campaign", int, description="Only this campaign's assignments."),
            OpenApiParameter("limit", int, description=f"Page size, at most {Pagination.max_limit}."),
            OpenApiParameter("offset", int),
        ],
        operation_id="me_assignments_list",
        responses=limit_offset_page(OwnAssignmentOutput, name="OwnAssignmentPage"),
    )
    def get(self, request):
        qs = selectors.assignments_of_rater(rater=request.user)
        campaign = request.query_params.get("campaign")
        if campaign:
            if not campaign.isdigit():
                raise ApplicationError("campaign must be a campaign id", field="campaign")
            qs = qs.filter(item__campaign_id=int(campaign))
        paginator = self.Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(OwnAssignmentOutput(page, many=True).data)


class MyAssignmentDetailApi(APIView):
    @extend_schema(responses=OwnAssignmentOutput)
    def get(self, request, assignment_id: int):
        assignment = get_object_or_404(selectors.assignments_of_rater(rater=request.user), pk=assignment_id)
        return Response(OwnAssignmentOutput(assignment).data)


class ItemImageApi(APIView):
    """The image bytes, to raters who hold or held a lease on the item and to leads/admins."""

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request, item_id: int):
        item = selectors.item_visible_to(user=request.user, item_id=item_id)
        if item is None:
            raise ApplicationError(_("No such item among yours."), status_code=404)
        try:
            handle = item.image.open("rb")
        except FileNotFoundError:
            # The row outlived its file (storage restored from an older backup, say): say so
            # plainly rather than fail with a 500; operators see the log line.
            logger.error("image file %s of item %s is missing from storage", item.image.name, item.pk)
            raise ApplicationError("This item's image file is missing from storage.", status_code=404) from None
        response = FileResponse(handle)
        # Images never change (content-addressed), but they are private to the rater.
        response["Cache-Control"] = "private, max-age=86400, immutable"
        return response


class CampaignProgressOutput(serializers.Serializer):
    """A lead's or admin's view: the whole campaign (selectors.CampaignProgress)."""

    campaign = serializers.IntegerField()
    items_total = serializers.IntegerField()
    items_complete = serializers.IntegerField()
    items_in_progress = serializers.IntegerField()
    items_untouched = serializers.IntegerField()
    annotations_submitted = serializers.IntegerField()
    active_leases = serializers.IntegerField()


class RaterProgressOutput(serializers.Serializer):
    """A rater's view: their own counts and how much is left (selectors.RaterProgress)."""

    campaign = serializers.IntegerField()
    done_today = serializers.IntegerField()
    done_total = serializers.IntegerField()
    remaining_for_me = serializers.IntegerField()
    campaign_items_remaining = serializers.IntegerField()


class CampaignProgressApi(APIView):
    """Leads/admins get the campaign's totals; a rater gets their own figures only."""

    @extend_schema(
        responses=PolymorphicProxySerializer(
            component_name="Progress",
            serializers=[CampaignProgressOutput, RaterProgressOutput],
            resource_type_field_name=None,
        )
    )
    def get(self, request, campaign_id: int):
        if roles.is_lead_or_admin(request.user):
            campaign = get_object_or_404(Campaign, pk=campaign_id)
            return Response({"campaign": campaign.pk, **vars(selectors.campaign_progress(campaign=campaign))})
        campaign = _rater_campaign(request, campaign_id)
        return Response(
            {"campaign": campaign.pk, **vars(selectors.rater_progress(campaign=campaign, rater=request.user))}
        )


# --------------------------------------------------------------------------- gold items


class GoldReferenceOutput(serializers.Serializer):
    item = serializers.IntegerField(source="item_id")
    source = serializers.CharField()  # type: ignore[assignment]
    source_annotation = serializers.IntegerField(source="source_annotation_id", allow_null=True)
    misaligned_words = serializers.JSONField()
    scores = serializers.JSONField()
    created_at = serializers.DateTimeField()


class MakeGoldApi(APIView):
    """A lead or admin makes an expert's answer the reference of its item, which becomes gold."""

    permission_classes = [IsLeadOrAdmin]

    @extend_schema(request=None, responses={201: GoldReferenceOutput, 409: ErrorResponse})
    def post(self, request, annotation_id: int):
        reference = gold.gold_from_annotation(annotation_id=annotation_id, by=request.user)
        return Response(GoldReferenceOutput(reference).data, status=status.HTTP_201_CREATED)


class ItemGoldApi(APIView):
    """An admin turns a gold item back into an ordinary one."""

    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={204: None, 404: ErrorResponse})
    def delete(self, request, item_id: int):
        gold.gold_remove(item_id=item_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GoldMapApi(APIView):
    """A reference map (PNG): to leads and admins, and to a rater for an item they answered
    during their qualification; anyone else gets the same 404 as for a real item."""

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY, 404: ErrorResponse})
    def get(self, request, item_id: int, kind: str):
        reference = gold_selectors.gold_map_for_user(user=request.user, item_id=item_id, kind=kind)
        if reference is None:
            raise ApplicationError("No such map among yours.", status_code=404)
        response = FileResponse(getattr(reference, gold.MAP_FIELDS[kind]).open("rb"), content_type="image/png")
        response["Cache-Control"] = "private, no-store"
        return response


class RequalifyOutput(serializers.Serializer):
    campaign = serializers.IntegerField(source="status.campaign_id")
    rater = serializers.IntegerField(source="status.rater_id")
    qualification = serializers.CharField(source="status.qualification")
    attempt = serializers.IntegerField(source="status.qualification_attempt")
    reused_items = serializers.IntegerField()


class RequalifyApi(APIView):
    """An admin lets a rater take the campaign's qualification again."""

    permission_classes = [IsAdmin]

    @extend_schema(request=None, responses={200: RequalifyOutput, 404: ErrorResponse, 409: ErrorResponse})
    def post(self, request, campaign_id: int, user_id: int):
        result = gold.rater_requalify(campaign_id=campaign_id, rater_id=user_id)
        return Response(RequalifyOutput(result).data)
