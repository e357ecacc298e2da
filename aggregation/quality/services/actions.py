"""Quality-control actions and their audit log: pause/resume a rater, exclude answers and undo,
extra raters for poorly agreeing items, and proposals a lead applies or dismisses.

The writes to annotation's tables go through annotation/moderation.py and
annotation.services.item_request_extra_rater. Each action here holds the campaign's
QualityPolicy row lock for its whole transaction: two leads acting on one campaign at once are
serialised, so the second sees the first's result (already paused, already excluded) and the
audit log gets one entry, not two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from annotation import moderation
from annotation.models import Annotation, Campaign, Item
from annotation.services import item_request_extra_rater
from richhf_site.errors import ApplicationError, Conflict

from ..models import ActionKind, ActionState, QualityAction, QualityPolicy, QualityRun


@dataclass(frozen=True)
class ActionResult:
    action: QualityAction | None
    created: bool  # False: nothing changed (another lead, or the task, did it first)


def campaign_lock(campaign: Campaign) -> QualityPolicy:
    """The campaign's QualityPolicy row, created with defaults if missing, row-locked."""
    QualityPolicy.objects.get_or_create(campaign=campaign)
    return QualityPolicy.objects.select_for_update().get(campaign=campaign)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why: the reason goes into the audit log.", field="reason")
    return reason[:500]


def _is_campaign_rater(campaign: Campaign, rater) -> bool:
    return (
        campaign.raters.filter(pk=rater.pk).exists()
        or Annotation.objects.filter(item__campaign=campaign, rater=rater).exists()
    )


def _close_proposals(*, campaign: Campaign, kind: str, rater=None, item_id: int | None = None, by, now) -> None:
    """A proposal that someone acted on by hand is settled: it leaves the open list."""
    qs = QualityAction.objects.filter(campaign=campaign, kind=kind, state=ActionState.PROPOSED)
    qs = qs.filter(rater=rater) if rater is not None else qs.filter(item__pk=item_id or 0)
    qs.update(state=ActionState.DISMISSED, dismissed_at=now, dismissed_by=by)


@transaction.atomic
def rater_pause_action(
    *,
    campaign: Campaign,
    rater,
    reason: str,
    by=None,
    automatic: bool = False,
    run: QualityRun | None = None,
    proposal: QualityAction | None = None,
) -> ActionResult:
    """Pauses the rater (annotation.moderation.rater_pause: no new leases, open ones released)
    and logs it. A rater already paused: nothing changes and no entry is written."""
    reason = _reason(reason)
    campaign_lock(campaign)
    if not _is_campaign_rater(campaign, rater):
        raise ApplicationError("This user is not a rater of the campaign.", field="rater_id", status_code=404)
    now = timezone.now()
    result = moderation.rater_pause(campaign=campaign, rater=rater, reason=reason, now=now)
    if not result.changed:
        return ActionResult(action=_open_action(campaign, ActionKind.PAUSE, rater), created=False)
    action = _record(
        proposal=proposal,
        by=by,
        now=now,
        campaign=campaign,
        kind=ActionKind.PAUSE,
        rater=rater,
        reason=f"{reason} ({result.released_leases} open lease(s) released)" if result.released_leases else reason,
        automatic=automatic,
        run=run,
    )
    _close_proposals(campaign=campaign, kind=ActionKind.PAUSE, rater=rater, by=by, now=now)
    return ActionResult(action=action, created=True)


def _record(*, proposal: QualityAction | None, by, now, **fields) -> QualityAction:
    """Writes the applied action: a new audit entry, or the proposal a lead clicked turned
    into the applied action (so the log shows one line: proposed by the task, applied by them)."""
    if proposal is None:
        return QualityAction.objects.create(
            state=ActionState.APPLIED, created_by=by, applied_at=now, applied_by=by, **fields
        )
    for name in ("annotation_ids",):
        if name in fields:
            setattr(proposal, name, fields[name])
    proposal.state = ActionState.APPLIED
    proposal.automatic = False
    proposal.applied_at = now
    proposal.applied_by = by
    proposal.save(update_fields=["state", "automatic", "applied_at", "applied_by", "annotation_ids"])
    return proposal


def _open_action(campaign: Campaign, kind: str, rater) -> QualityAction | None:
    return (
        QualityAction.objects.filter(campaign=campaign, kind=kind, rater=rater, state=ActionState.APPLIED)
        .order_by("-applied_at", "-id")
        .first()
    )


@transaction.atomic
def rater_resume_action(*, campaign: Campaign, rater, by) -> ActionResult:
    """Undoes the rater's pause: they may lease again. The pause entries are marked undone."""
    campaign_lock(campaign)
    now = timezone.now()
    result = moderation.rater_resume(campaign=campaign, rater=rater)
    if not result.changed:
        return ActionResult(action=None, created=False)
    open_pauses = QualityAction.objects.filter(
        campaign=campaign, kind=ActionKind.PAUSE, rater=rater, state=ActionState.APPLIED
    )
    last = open_pauses.order_by("-applied_at", "-id").first()
    open_pauses.update(state=ActionState.UNDONE, undone_at=now, undone_by=by)
    if last is not None:
        last.refresh_from_db()
    return ActionResult(action=last, created=True)


@transaction.atomic
def answers_exclude_action(
    *,
    campaign: Campaign,
    reason: str,
    rater=None,
    annotation_ids: Sequence[int] | None = None,
    by=None,
    automatic: bool = False,
    run: QualityRun | None = None,
    proposal: QualityAction | None = None,
) -> ActionResult:
    """Excludes all of a rater's answers in the campaign, or the chosen ones, and logs the
    answers this call changed. Their items go back to the queue; aggregates follow after
    commit (annotation's item_answers_changed hook). Answers already excluded are left out;
    when nothing is left to change, no entry is written."""
    reason = _reason(reason)
    if (rater is None) == (annotation_ids is None):
        raise ApplicationError("Give either a rater or a list of answers.", field="annotation_ids")
    campaign_lock(campaign)
    qs = Annotation.objects.filter(item__campaign=campaign)
    if rater is not None:
        qs = qs.filter(rater=rater)
    else:
        ids = sorted(set(annotation_ids or []))
        if not ids:
            raise ApplicationError("Choose at least one answer.", field="annotation_ids")
        found = set(qs.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [pk for pk in ids if pk not in found]
        if missing:
            raise ApplicationError(
                f"answer {missing[0]} is not an answer of this campaign", field="annotation_ids", status_code=404
            )
        qs = qs.filter(pk__in=ids)
    now = timezone.now()
    changed = moderation.annotations_exclude(
        annotation_ids=list(qs.values_list("pk", flat=True)), reason=reason, now=now
    )
    if not changed:
        return ActionResult(action=None, created=False)
    raters = set(Annotation.objects.filter(pk__in=changed).values_list("rater_id", flat=True))
    action = _record(
        proposal=proposal,
        by=by,
        now=now,
        campaign=campaign,
        kind=ActionKind.EXCLUDE,
        rater_id=rater.pk if rater is not None else (raters.pop() if len(raters) == 1 else None),
        annotation_ids=changed,
        reason=reason,
        automatic=automatic,
        run=run,
    )
    if rater is not None:
        _close_proposals(campaign=campaign, kind=ActionKind.EXCLUDE, rater=rater, by=by, now=now)
    return ActionResult(action=action, created=True)


def _action_locked(*, campaign: Campaign, action_id: int) -> QualityAction:
    action = QualityAction.objects.select_for_update().filter(pk=action_id, campaign=campaign).first()
    if action is None:
        raise ApplicationError("No such action in this campaign.", status_code=404)
    return action


@transaction.atomic
def action_undo(*, campaign: Campaign, action_id: int, by) -> QualityAction:
    """Reverses an applied exclusion (its answers count again) or pause (the rater resumes).
    Undoing twice is a no-op; an extra rater cannot be undone (the answer may exist already)."""
    campaign_lock(campaign)
    action = _action_locked(campaign=campaign, action_id=action_id)
    if action.state == ActionState.UNDONE:
        return action
    if action.state != ActionState.APPLIED:
        raise Conflict(f"Only an applied action can be undone; this one is {action.state}.", extra={"code": "state"})
    now = timezone.now()
    if action.kind == ActionKind.EXCLUDE:
        moderation.annotations_include(annotation_ids=action.annotation_ids, now=now)
    elif action.kind == ActionKind.PAUSE:
        moderation.rater_resume(campaign=campaign, rater=action.rater)
    else:
        raise Conflict("An extra rater cannot be undone.", extra={"code": "not_undoable"})
    action.state = ActionState.UNDONE
    action.undone_at = now
    action.undone_by = by
    action.save(update_fields=["state", "undone_at", "undone_by"])
    return action


@transaction.atomic
def item_extra_rater_action(
    *,
    campaign: Campaign,
    item_id: int,
    reason: str,
    by=None,
    automatic: bool = False,
    run=None,
    proposal: QualityAction | None = None,
) -> ActionResult:
    """Adaptive redundancy: one more rater for a poorly agreeing item, up to the policy's cap."""
    reason = _reason(reason)
    policy = campaign_lock(campaign)
    item = Item.objects.filter(pk=item_id, campaign=campaign).first()
    if item is None:
        raise ApplicationError("No such item in this campaign.", field="item_id", status_code=404)
    if item.extra_raters >= policy.redundancy_cap:
        return ActionResult(action=None, created=False)
    now = timezone.now()
    item_request_extra_rater(item_id=item.pk)
    action = _record(
        proposal=proposal,
        by=by,
        now=now,
        campaign=campaign,
        kind=ActionKind.REDUNDANCY,
        item=item,
        reason=reason,
        automatic=automatic,
        run=run,
    )
    _close_proposals(campaign=campaign, kind=ActionKind.REDUNDANCY, item_id=item.pk, by=by, now=now)
    return ActionResult(action=action, created=True)


@transaction.atomic
def action_propose(
    *, campaign: Campaign, kind: str, reason: str, run: QualityRun | None, rater=None, item_id: int | None = None
) -> QualityAction | None:
    """Records a flag that needs a lead's click, once: an open proposal for the same target is
    kept (its reason refreshed). Holds the campaign lock (campaign_lock), as every action does."""
    campaign_lock(campaign)
    qs = QualityAction.objects.filter(campaign=campaign, kind=kind, state=ActionState.PROPOSED)
    qs = qs.filter(rater=rater) if rater is not None else qs.filter(item__pk=item_id or 0)
    existing = qs.first()
    if existing is not None:
        if existing.reason != reason:
            existing.reason = reason[:500]
            existing.run = run
            existing.save(update_fields=["reason", "run"])
        return existing
    return QualityAction.objects.create(
        campaign=campaign,
        kind=kind,
        state=ActionState.PROPOSED,
        rater=rater,
        item_id=item_id,
        reason=reason[:500],
        automatic=True,
        run=run,
    )


@transaction.atomic
def proposal_apply(*, campaign: Campaign, action_id: int, by) -> ActionResult:
    """A lead's click on a proposal: the action runs as if they had asked for it by hand, and
    the proposal is settled. Applying one already settled is a 409."""
    campaign_lock(campaign)
    proposal = _action_locked(campaign=campaign, action_id=action_id)
    if proposal.state != ActionState.PROPOSED:
        raise Conflict(f"This proposal is already {proposal.state}.", extra={"code": proposal.state})
    common = {"campaign": campaign, "reason": proposal.reason, "by": by, "proposal": proposal}
    if proposal.kind == ActionKind.PAUSE:
        result = rater_pause_action(rater=proposal.rater, **common)
    elif proposal.kind == ActionKind.EXCLUDE:
        result = answers_exclude_action(rater=proposal.rater, **common)
    else:
        assert proposal.item_id is not None
        result = item_extra_rater_action(item_id=proposal.item_id, **common)
    if not result.created:
        # Nothing left to do (done by hand meanwhile, or the cap reached): settled, not applied.
        proposal.state = ActionState.DISMISSED
        proposal.dismissed_at = timezone.now()
        proposal.dismissed_by = by
        proposal.save(update_fields=["state", "dismissed_at", "dismissed_by"])
    return result


@transaction.atomic
def proposal_dismiss(*, campaign: Campaign, action_id: int, by) -> QualityAction:
    campaign_lock(campaign)
    proposal = _action_locked(campaign=campaign, action_id=action_id)
    if proposal.state == ActionState.DISMISSED:
        return proposal
    if proposal.state != ActionState.PROPOSED:
        raise Conflict(f"This proposal is already {proposal.state}.", extra={"code": proposal.state})
    proposal.state = ActionState.DISMISSED
    proposal.dismissed_at = timezone.now()
    proposal.dismissed_by = by
    proposal.save(update_fields=["state", "dismissed_at", "dismissed_by"])
    return proposal
