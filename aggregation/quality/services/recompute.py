"""The recompute run: every rater's reliability from co-rater agreement (reliability.py), gold
accuracy (selectors.gold_accuracy_by_rater), speed; flags from the campaign's policy; a
snapshot per rater (history); then the policy's automatic actions and proposals.

The heavy part (reading answers, MACE, rasterising) holds no lock; the policy step then takes
the campaign's lock (actions.campaign_lock) briefly per action, the lock leads' clicks take.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Annotation, Campaign, RaterStatus
from modeling.protocol import MAP_KINDS, SCORE_NAMES
from richhf_site.faults import BROKER_ERRORS

from .. import selectors
from ..models import ActionKind, Mode, QualityPolicy, QualityRun, RaterSnapshot, RunState
from . import actions
from .reliability import RaterFigures, campaign_figures

logger = logging.getLogger(__name__)

# A queued run older than its countdown plus this lost its message: send it again.
STALE_QUEUED_S = 600

# Gold accuracy is trusted from this many gold answers on.
MIN_GOLD = 3

FLAG_LOW_RELIABILITY = "low_reliability"
FLAG_FAST = "fast"
FLAG_LOW_GOLD = "low_gold"


def rater_flags(*, fig: RaterFigures, gold: tuple[float, int] | None, policy: QualityPolicy) -> list[str]:
    """The policy's verdict on one rater's figures (docs/quality.md, "Flags")."""
    flags = []
    judged = fig.n_overlap >= policy.min_answers
    if judged and fig.reliability is not None and fig.reliability < policy.reliability_threshold:
        flags.append(FLAG_LOW_RELIABILITY)
    if fig.n_answers >= policy.min_answers and (fig.fast_share or 0.0) >= policy.fast_share_threshold:
        flags.append(FLAG_FAST)
    if gold is not None and gold[1] >= MIN_GOLD and gold[0] < policy.gold_threshold:
        flags.append(FLAG_LOW_GOLD)
    return flags


def _flag_reason(fig: RaterFigures, flags: Sequence[str], gold, policy: QualityPolicy) -> str:
    parts = []
    if FLAG_LOW_RELIABILITY in flags:
        parts.append(
            f"reliability {fig.reliability:.2f} < {policy.reliability_threshold:.2f} over {fig.n_overlap} answers"
        )
    if FLAG_FAST in flags:
        parts.append(f"{(fig.fast_share or 0) * 100:.0f}% of answers faster than {policy.speed_factor:g}x the median")
    if FLAG_LOW_GOLD in flags and gold:
        parts.append(f"gold accuracy {gold[0]:.2f} < {policy.gold_threshold:.2f} over {gold[1]} gold answers")
    return "Quality control: " + "; ".join(parts)


def item_agreement(row: dict) -> float:
    """One 0..1 agreement figure of an item's aggregate: the mean of 1 - mean score maxdiff, the
    keyword unanimity and the mean pairwise map IoU (where defined). Adaptive redundancy
    compares it with the policy's threshold."""
    parts = [1.0 - sum(row[f"{s}_maxdiff"] for s in SCORE_NAMES) / len(SCORE_NAMES), row["keyword_unanimity"]]
    ious = [row[f"{k}_iou"] for k in MAP_KINDS if row[f"{k}_iou"] is not None]
    if ious:
        parts.append(sum(ious) / len(ious))
    return sum(parts) / len(parts)


@transaction.atomic
def quality_run_request(*, campaign: Campaign, trigger: str = "manual", by=None, countdown: float = 0) -> QualityRun:
    """Queues a recompute, debounced in the database: while one is queued for the campaign,
    asking again returns it (one queued run per campaign, a partial unique constraint)."""
    from ..tasks import quality_recompute

    existing = QualityRun.objects.filter(campaign=campaign, state=RunState.QUEUED).first()
    if existing is not None:
        # A queued run whose message was lost (broker down at the time) is sent again, so the
        # debounce never blocks a campaign for good; a duplicate delivery finds it started.
        if existing.created_at < timezone.now() - timedelta(seconds=countdown + STALE_QUEUED_S):
            run_id = existing.pk
            transaction.on_commit(lambda: _publish(quality_recompute, run_id, 0))
        return existing
    try:
        with transaction.atomic():
            run = QualityRun.objects.create(campaign=campaign, trigger=trigger, requested_by=by)
    except IntegrityError:  # a concurrent request queued one first
        return QualityRun.objects.get(campaign=campaign, state=RunState.QUEUED)
    run_id = run.pk
    transaction.on_commit(lambda: _publish(quality_recompute, run_id, countdown))
    return run


def _publish(task, run_id: int, countdown: float) -> None:
    try:
        task.apply_async(args=[run_id], countdown=countdown)
    except BROKER_ERRORS:
        logger.warning("quality run %s not sent (broker down); the next request or beat sends it again", run_id)


def _progress(run: QualityRun, value: float, stage: str) -> None:
    run.progress, run.stage = value, stage
    QualityRun.objects.filter(pk=run.pk).update(progress=value, stage=stage)


@dataclass(frozen=True)
class RunReport:
    run_id: int
    flagged: dict[int, list[str]]
    paused: list[int]
    excluded_raters: list[int]
    proposals: int
    extra_raters: list[int]


def quality_run_execute(*, run_id: int) -> RunReport | None:
    """Runs a queued recompute to the end; None if it is not queued (a duplicate delivery).
    A run acts only on raters not yet paused or excluded, so running twice acts once."""
    started = QualityRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(
        state=RunState.RUNNING, started_at=timezone.now(), progress=0.0, stage="reading answers"
    )
    if not started:
        return None
    run = QualityRun.objects.select_related("campaign").get(pk=run_id)
    try:
        return _execute(run)
    except Exception as exc:
        QualityRun.objects.filter(pk=run.pk).update(
            state=RunState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise


def _execute(run: QualityRun) -> RunReport:
    campaign = run.campaign
    policy = selectors.policy_get(campaign=campaign)
    answers = selectors.campaign_answers(campaign=campaign)
    _progress(run, 0.1, "estimating reliability (MACE, scores, maps)")
    figures = campaign_figures(answers, speed_factor=policy.speed_factor)
    gold = selectors.gold_accuracy_by_rater(campaign=campaign)
    _progress(run, 0.6, "writing snapshots")
    now = timezone.now()
    flagged: dict[int, list[str]] = {}
    snaps = []
    for rater_id in sorted(set(figures.raters) | set(gold)):
        fig = figures.raters.get(rater_id) or RaterFigures(rater_id=rater_id)
        g = gold.get(rater_id)
        flags = rater_flags(fig=fig, gold=g, policy=policy)
        if flags:
            flagged[rater_id] = flags
        snaps.append(
            RaterSnapshot(
                run=run,
                campaign=campaign,
                rater_id=rater_id,
                computed_at=now,
                n_answers=fig.n_answers,
                n_excluded=fig.n_excluded,
                keyword_competence=fig.keyword_competence,
                score_bias=fig.score_bias,
                score_consistency=fig.score_consistency,
                map_agreement=fig.map_agreement,
                reliability=fig.reliability,
                gold_accuracy=g[0] if g else None,
                n_gold=g[1] if g else 0,
                median_time_ms=fig.median_time_ms,
                fast_share=fig.fast_share,
                fast_answer_ids=fig.fast_answer_ids,
                flags=flags,
            )
        )
    RaterSnapshot.objects.bulk_create(snaps)
    _progress(run, 0.75, "applying the policy")
    paused, excluded, n_proposals = _apply_rater_policy(run, campaign, policy, figures.raters, gold, flagged)
    _progress(run, 0.85, "adaptive redundancy")
    extra = _apply_redundancy(run, campaign, policy)
    _progress(run, 0.95, "checking aggregates")
    items_reaggregate_stale(campaign=campaign)
    QualityRun.objects.filter(pk=run.pk).update(
        state=RunState.DONE,
        progress=1.0,
        stage="done",
        finished_at=timezone.now(),
        n_answers=len(answers),
        n_raters=len(snaps),
        median_time_ms=figures.median_time_ms,
    )
    return RunReport(
        run_id=run.pk,
        flagged=flagged,
        paused=paused,
        excluded_raters=excluded,
        proposals=n_proposals,
        extra_raters=extra,
    )


def _apply_rater_policy(run, campaign, policy, figures, gold, flagged) -> tuple[list[int], list[int], int]:
    User = get_user_model()
    paused_now = set(
        RaterStatus.objects.filter(campaign=campaign, paused_at__isnull=False).values_list("rater_id", flat=True)
    )
    with_counting = set(
        Annotation.objects.filter(item__campaign=campaign, excluded_at__isnull=True).values_list("rater_id", flat=True)
    )
    paused: list[int] = []
    excluded: list[int] = []
    n_proposals = 0
    for rater_id, flags in flagged.items():
        fig = figures.get(rater_id) or RaterFigures(rater_id=rater_id)
        reason = _flag_reason(fig, flags, gold.get(rater_id), policy)
        rater = User.objects.get(pk=rater_id)
        if rater_id not in paused_now and policy.pause_mode != Mode.OFF:
            if policy.pause_mode == Mode.AUTO:
                if actions.rater_pause_action(
                    campaign=campaign, rater=rater, reason=reason, automatic=True, run=run
                ).created:
                    paused.append(rater_id)
            else:
                actions.action_propose(campaign=campaign, kind=ActionKind.PAUSE, reason=reason, run=run, rater=rater)
                n_proposals += 1
        if rater_id in with_counting and policy.exclude_mode != Mode.OFF:
            if policy.exclude_mode == Mode.AUTO:
                result = actions.answers_exclude_action(
                    campaign=campaign, rater=rater, reason=reason, automatic=True, run=run
                )
                if result.created:
                    excluded.append(rater_id)
            else:
                actions.action_propose(campaign=campaign, kind=ActionKind.EXCLUDE, reason=reason, run=run, rater=rater)
                n_proposals += 1
    return paused, excluded, n_proposals


def _apply_redundancy(run, campaign, policy) -> list[int]:
    from aggregation.models import ItemAggregate

    if policy.redundancy_mode == Mode.OFF:
        return []
    fields = [
        "item_id",
        "keyword_unanimity",
        *[f"{s}_maxdiff" for s in SCORE_NAMES],
        *[f"{k}_iou" for k in MAP_KINDS],
    ]
    rows = ItemAggregate.objects.filter(
        item__campaign=campaign,
        item__is_gold=False,
        item__completed_at__isnull=False,
        item__extra_raters__lt=policy.redundancy_cap,
    ).values(*fields)
    done: list[int] = []
    for row in rows:
        agreement = item_agreement(row)
        if agreement >= policy.redundancy_threshold:
            continue
        reason = f"Quality control: item agreement {agreement:.2f} < {policy.redundancy_threshold:.2f}"
        if policy.redundancy_mode == Mode.AUTO:
            result = actions.item_extra_rater_action(
                campaign=campaign, item_id=row["item_id"], reason=reason, automatic=True, run=run
            )
            if result.created:
                done.append(row["item_id"])
        else:
            actions.action_propose(
                campaign=campaign, kind=ActionKind.REDUNDANCY, reason=reason, run=run, item_id=row["item_id"]
            )
    return done


def items_reaggregate(*, item_ids: Sequence[int]) -> list[int]:
    """Recomputes the aggregates of items whose counting answers changed; an item with no
    counting answer left loses its aggregate (nothing is left to aggregate). Returns the ids
    whose aggregate was written or removed."""
    from aggregation.models import ItemAggregate
    from aggregation.services import item_aggregates_recompute

    ids = sorted(set(item_ids))
    counting = set(
        Annotation.objects.filter(item_id__in=ids, excluded_at__isnull=True).values_list("item_id", flat=True)
    )
    empty = [pk for pk in ids if pk not in counting]
    if empty:
        ItemAggregate.objects.filter(item_id__in=empty).delete()
    report = item_aggregates_recompute(item_ids=[pk for pk in ids if pk in counting])
    return sorted(report.computed + empty)


def items_reaggregate_stale(*, campaign: Campaign) -> list[int]:
    """The safety net for a lost hook: aggregates whose answers are not exactly the counting
    answers of their item (an exclusion or undo whose enqueue failed) are recomputed."""
    from aggregation.models import ItemAggregate

    counting: dict[int, set[int]] = {}
    for pk, item_id in Annotation.objects.filter(item__campaign=campaign, excluded_at__isnull=True).values_list(
        "pk", "item_id"
    ):
        counting.setdefault(item_id, set()).add(pk)
    stale = [
        item_id
        for item_id, ids in ItemAggregate.objects.filter(item__campaign=campaign).values_list(
            "item_id", "annotation_ids"
        )
        if set(ids) != counting.get(item_id, set())
    ]
    return items_reaggregate(item_ids=stale) if stale else []
