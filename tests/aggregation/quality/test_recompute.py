"""The recompute run: snapshots (history), flags, and the policy's automatic actions and proposals."""

import pytest

from aggregation.models import ItemAggregate
from aggregation.quality.models import ActionState, QualityAction, QualityPolicy, QualityRun, RaterSnapshot
from aggregation.quality.services.recompute import quality_run_execute
from aggregation.services import item_aggregates_recompute
from annotation.models import Annotation, RaterStatus

from .factories import careful_and_spammer_crowd

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(make_campaign, make_user, make_item):
    campaign = make_campaign("crowd")
    careful = [make_user(f"careful{i}", "rater") for i in range(3)]
    spammer = make_user("spammer", "rater")
    campaign.raters.add(*careful, spammer)
    items = careful_and_spammer_crowd(campaign, careful, spammer, make_item)
    return campaign, careful, spammer, items


def _run(campaign):
    run = QualityRun.objects.create(campaign=campaign)
    report = quality_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run, report


def test_proposals_by_default_and_history_kept(crowd):
    campaign, careful, spammer, _ = crowd
    run, report = _run(campaign)

    assert run.state == "done" and run.progress == 1.0 and run.n_answers == 36
    snap = RaterSnapshot.objects.get(run=run, rater=spammer)
    assert "low_reliability" in snap.flags and "fast" in snap.flags
    # Every spammer answer (1 s against a ~25 s median) is listed as fast; no careful one is.
    assert sorted(snap.fast_answer_ids) == sorted(Annotation.objects.filter(rater=spammer).values_list("pk", flat=True))
    assert all(not RaterSnapshot.objects.get(run=run, rater=c).fast_answer_ids for c in careful)
    assert all(not RaterSnapshot.objects.get(run=run, rater=c).flags for c in careful)
    # Default policy: proposals only; nothing paused or excluded yet.
    proposals = QualityAction.objects.filter(state=ActionState.PROPOSED)
    assert {(p.kind, p.rater_id) for p in proposals} == {("pause", spammer.pk), ("exclude", spammer.pk)}
    assert not RaterStatus.objects.filter(paused_at__isnull=False).exists()
    assert not Annotation.objects.filter(excluded_at__isnull=False).exists()
    # A second run adds a snapshot per rater (the trend) but no duplicate proposal.
    run2, _ = _run(campaign)
    assert RaterSnapshot.objects.filter(rater=spammer).count() == 2
    assert QualityAction.objects.filter(state=ActionState.PROPOSED).count() == 2


def test_automatic_policy_pauses_and_excludes_the_spammer_only(crowd, django_capture_on_commit_callbacks):
    campaign, careful, spammer, items = crowd
    item_aggregates_recompute(item_ids=[i.pk for i in items])
    QualityPolicy.objects.create(campaign=campaign, pause_mode="auto", exclude_mode="auto")

    with django_capture_on_commit_callbacks(execute=True):
        _, report = _run(campaign)

    assert report.paused == [spammer.pk] and report.excluded_raters == [spammer.pk]
    assert RaterStatus.objects.get(campaign=campaign, rater=spammer).paused_at is not None
    assert Annotation.objects.filter(rater=spammer, excluded_at__isnull=False).count() == 12
    assert not Annotation.objects.filter(rater__in=careful, excluded_at__isnull=False).exists()
    log = QualityAction.objects.filter(state=ActionState.APPLIED)
    assert {(a.kind, a.automatic, a.applied_by_id) for a in log} == {("pause", True, None), ("exclude", True, None)}
    # Items went back to the queue; the stale-aggregate check recomputed them from 2 answers.
    assert all(not i.completed_at for i in type(items[0]).objects.filter(pk__in=[i.pk for i in items]))
    assert set(ItemAggregate.objects.values_list("n_annotations", flat=True)) == {2}
    # Running again acts on nobody new.
    _, again = _run(campaign)
    assert again.paused == [] and again.excluded_raters == []


def test_adaptive_redundancy_up_to_the_cap(crowd):
    campaign, _, _, items = crowd
    item_aggregates_recompute(item_ids=[i.pk for i in items])
    QualityPolicy.objects.create(
        campaign=campaign,
        pause_mode="off",
        exclude_mode="off",
        redundancy_mode="auto",
        redundancy_threshold=1.0,
        redundancy_cap=1,
    )
    _, report = _run(campaign)
    assert sorted(report.extra_raters) == sorted(i.pk for i in items)
    assert QualityAction.objects.filter(kind="redundancy", automatic=True).count() == len(items)
    # The cap holds: a second run asks for nobody more (items are incomplete now, and capped).
    _, again = _run(campaign)
    assert again.extra_raters == []
    assert {i.extra_raters for i in type(items[0]).objects.filter(pk__in=[i.pk for i in items])} == {1}


def test_runs_are_debounced_and_queued_after_answers(crowd, django_capture_on_commit_callbacks):
    from aggregation.quality.services.recompute import quality_run_request
    from aggregation.quality.tasks import item_completed_schedule_recompute

    campaign, _, _, items = crowd
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = quality_run_request(campaign=campaign, trigger="manual")
        second = quality_run_request(campaign=campaign, trigger="manual")
    assert first.pk == second.pk and len(callbacks) == 1  # one message for one queued run
    QualityRun.objects.filter(pk=first.pk).update(state="done")
    # A completed item queues the next run (trigger "answers"); more completions join it.
    with django_capture_on_commit_callbacks(execute=False):
        item_completed_schedule_recompute(items[0].pk)
        item_completed_schedule_recompute(items[1].pk)
    queued = QualityRun.objects.filter(campaign=campaign, state="queued")
    assert queued.count() == 1 and queued.get().trigger == "answers"
    # A duplicate delivery of a finished run does nothing.
    assert quality_run_execute(run_id=first.pk) is None


def test_beat_queues_a_run_per_campaign_and_fails_stalled_runs(crowd, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from aggregation.quality.tasks import quality_recompute_all

    campaign, *_ = crowd
    stalled = QualityRun.objects.create(
        campaign=campaign, state="running", started_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=False):
        assert quality_recompute_all() == 1
    stalled.refresh_from_db()
    assert stalled.state == "failed" and "worker stopped" in stalled.error
    assert QualityRun.objects.get(campaign=campaign, state="queued").trigger == "beat"


def test_honeypot_scores_give_gold_accuracy_and_flag_a_rater_co_raters_cannot_catch(crowd, make_item):
    """A rater who agrees with their co-raters but fails the honeypots: only gold shows it."""
    from django.utils import timezone

    from annotation.models import GoldAnswerKind, GoldAnswerScore, Item

    campaign, careful, spammer, _ = crowd
    sly = careful[0]
    gold_items = [make_item(campaign) for _ in range(4)]
    Item.objects.filter(pk__in=[i.pk for i in gold_items]).update(is_gold=True)
    for item, quality in zip(gold_items, [0.1, 0.2, 0.3, 0.2], strict=True):
        GoldAnswerScore.objects.create(
            campaign=campaign,
            item=item,
            rater=sly,
            kind=GoldAnswerKind.HONEYPOT,
            quality=quality,
            created_at=timezone.now(),
        )
    GoldAnswerScore.objects.create(
        campaign=campaign,
        item=gold_items[0],
        rater=careful[1],
        kind=GoldAnswerKind.HONEYPOT,
        quality=0.9,
        created_at=timezone.now(),
    )
    run, _ = _run(campaign)

    snap = RaterSnapshot.objects.get(run=run, rater=sly)
    assert snap.n_gold == 4 and snap.gold_accuracy == pytest.approx(0.2)
    assert "low_gold" in snap.flags and "low_reliability" not in snap.flags
    # One good honeypot answer is too few to judge (MIN_GOLD), and it is good anyway.
    other = RaterSnapshot.objects.get(run=run, rater=careful[1])
    assert other.n_gold == 1 and "low_gold" not in other.flags
    assert QualityAction.objects.filter(state=ActionState.PROPOSED, kind="pause", rater=sly).exists()
