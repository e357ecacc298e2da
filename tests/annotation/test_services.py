"""The assignment engine's rules, on the real database."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Annotation, Assignment, AssignmentState
from annotation.services import (
    AnnotationInput,
    annotation_submit,
    assignment_heartbeat,
    assignment_next,
    assignment_skip,
    campaign_add_raters,
    leases_expire,
)
from richhf_site.errors import ApplicationError, Conflict

pytestmark = pytest.mark.django_db

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}


def answer(**kw) -> AnnotationInput:
    base = dict(implausible_points=[[0.1, 0.2]], misaligned_points=[], misaligned_words=[0], scores=SCORES)
    base.update(kw)
    return AnnotationInput(**base)


def test_next_is_idempotent_and_returns_the_open_lease(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    make_item(campaign)
    first = assignment_next(rater=r1, campaign=campaign).assignment
    again = assignment_next(rater=r1, campaign=campaign).assignment
    assert first is not None and again.pk == first.pk
    assert Assignment.objects.filter(rater=r1).count() == 1


def test_queue_finishes_items_in_progress_before_priority_and_age(raters, make_item):
    campaign, (r1, r2, _) = raters
    old = make_item(campaign)
    urgent = make_item(campaign, priority=10.0)
    first_for_r1 = assignment_next(rater=r1, campaign=campaign).assignment
    assert first_for_r1.item == urgent  # priority beats age among untouched items
    # r2 must join the item r1 started, although nothing else distinguishes it.
    assert assignment_next(rater=r2, campaign=campaign).assignment.item == urgent
    annotation_submit(assignment_id=first_for_r1.pk, rater=r1, data=answer())
    assert assignment_next(rater=r1, campaign=campaign).assignment.item == old


def test_age_orders_items_of_equal_priority(raters, make_item):
    campaign, (r1, _, _) = raters
    first = make_item(campaign)
    make_item(campaign)
    assert assignment_next(rater=r1, campaign=campaign).assignment.item == first


def test_exactly_k_raters_then_nothing_to_do(raters, make_item, make_user):
    campaign, users = raters
    item = make_item(campaign)
    for user in users:
        a = assignment_next(rater=user, campaign=campaign).assignment
        assert a.item == item
        annotation_submit(assignment_id=a.pk, rater=user, data=answer())
    item.refresh_from_db()
    assert item.completed_at is not None
    assert item.n_submitted == 3 == Assignment.objects.filter(item=item, state=AssignmentState.SUBMITTED).count()
    fourth = make_user("r4", "rater")
    campaign_add_raters(campaign=campaign, users=[fourth])
    result = assignment_next(rater=fourth, campaign=campaign)
    # Issue 15: a rater who never answered anything here is "new", not "done".
    assert result.assignment is None and result.reason == "new"
    again = assignment_next(rater=users[0], campaign=campaign)
    assert again.assignment is None and again.reason == "done"


def test_busy_when_remaining_slots_are_all_leased(raters, make_item, make_user):
    campaign, users = raters
    make_item(campaign)
    for user in users:
        assert assignment_next(rater=user, campaign=campaign).assignment is not None
    fourth = make_user("r4", "rater")
    campaign_add_raters(campaign=campaign, users=[fourth])
    result = assignment_next(rater=fourth, campaign=campaign)
    assert result.assignment is None and result.reason == "busy"


def test_skipped_item_never_comes_back_and_does_not_count(raters, make_item, make_user):
    campaign, (r1, r2, r3) = raters
    item = make_item(campaign)
    a = assignment_next(rater=r1, campaign=campaign).assignment
    assignment_skip(assignment_id=a.pk, rater=r1, reason="image does not load")
    assert assignment_next(rater=r1, campaign=campaign).reason == "done"
    # The skip freed the slot: three other raters can still complete the item.
    r4 = make_user("r4", "rater")
    campaign_add_raters(campaign=campaign, users=[r4])
    for user in (r2, r3, r4):
        b = assignment_next(rater=user, campaign=campaign).assignment
        assert b.item == item
        annotation_submit(assignment_id=b.pk, rater=user, data=answer())
    item.refresh_from_db()
    assert item.completed_at is not None


def test_skip_needs_a_reason(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    a = assignment_next(rater=r1, campaign=campaign).assignment
    with pytest.raises(ApplicationError) as err:
        assignment_skip(assignment_id=a.pk, rater=r1, reason="   ")
    assert err.value.field == "reason"


def test_expired_lease_frees_the_slot_and_is_never_reoffered(raters, make_item, make_user):
    campaign, (r1, r2, r3) = raters
    item = make_item(campaign)
    t0 = timezone.now()
    a1 = assignment_next(rater=r1, campaign=campaign, now=t0).assignment
    later = t0 + timedelta(minutes=campaign.lease_minutes + 1)
    assert leases_expire(now=later) == 1
    a1.refresh_from_db()
    assert a1.state == AssignmentState.EXPIRED
    # r1 only let a lease expire: never answered or skipped anything, so "new" (issue 15).
    assert assignment_next(rater=r1, campaign=campaign, now=later).reason == "new"
    r4 = make_user("r4", "rater")
    campaign_add_raters(campaign=campaign, users=[r4])
    for user in (r2, r3, r4):
        assert assignment_next(rater=user, campaign=campaign, now=later).assignment.item == item


def test_expired_lease_is_ignored_even_before_the_sweeper_runs(raters, make_item, make_user):
    campaign, users = raters
    item = make_item(campaign, prompt="a cat")
    t0 = timezone.now()
    for user in users:
        assignment_next(rater=user, campaign=campaign, now=t0)
    r4 = make_user("r4", "rater")
    campaign_add_raters(campaign=campaign, users=[r4])
    assert assignment_next(rater=r4, campaign=campaign, now=t0).reason == "busy"
    later = t0 + timedelta(minutes=campaign.lease_minutes, seconds=1)
    assert assignment_next(rater=r4, campaign=campaign, now=later).assignment.item == item


def test_late_submit_is_accepted_while_the_slot_is_free(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    t0 = timezone.now()
    a = assignment_next(rater=r1, campaign=campaign, now=t0).assignment
    later = t0 + timedelta(minutes=campaign.lease_minutes + 5)
    leases_expire(now=later)
    annotation, created = annotation_submit(assignment_id=a.pk, rater=r1, data=answer(), now=later)
    assert created and annotation.assignment.state == AssignmentState.SUBMITTED


def test_late_submit_is_409_when_the_slot_was_taken(raters, make_item, make_user):
    campaign, (r1, r2, r3) = raters
    make_item(campaign)
    t0 = timezone.now()
    late = assignment_next(rater=r1, campaign=campaign, now=t0).assignment
    later = t0 + timedelta(minutes=campaign.lease_minutes + 1)
    r4 = make_user("r4", "rater")
    campaign_add_raters(campaign=campaign, users=[r4])
    for user in (r2, r3, r4):
        b = assignment_next(rater=user, campaign=campaign, now=later).assignment
        annotation_submit(assignment_id=b.pk, rater=user, data=answer(), now=later)
    with pytest.raises(Conflict) as err:
        annotation_submit(assignment_id=late.pk, rater=r1, data=answer(), now=later)
    assert "expired" in err.value.message
    assert not Annotation.objects.filter(rater=r1).exists()


def test_heartbeat_extends_and_revives_a_free_expired_lease(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    t0 = timezone.now()
    a = assignment_next(rater=r1, campaign=campaign, now=t0).assignment
    t1 = t0 + timedelta(minutes=10)
    extended = assignment_heartbeat(assignment_id=a.pk, rater=r1, now=t1)
    assert extended.expires_at == t1 + timedelta(minutes=campaign.lease_minutes)
    t2 = t1 + timedelta(hours=1)
    leases_expire(now=t2)
    revived = assignment_heartbeat(assignment_id=a.pk, rater=r1, now=t2)
    assert revived.state == AssignmentState.LEASED and revived.expires_at > t2


def test_identical_resubmit_is_idempotent_and_a_different_one_conflicts(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    a = assignment_next(rater=r1, campaign=campaign).assignment
    first, created = annotation_submit(assignment_id=a.pk, rater=r1, data=answer())
    again, created_again = annotation_submit(assignment_id=a.pk, rater=r1, data=answer())
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(Conflict):
        annotation_submit(assignment_id=a.pk, rater=r1, data=answer(scores={**SCORES, "overall": 1}))
    assert Annotation.objects.filter(assignment=a).count() == 1


def test_submit_rejects_word_index_outside_prompt_and_stores_nothing(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign, prompt="a yellow cat")
    a = assignment_next(rater=r1, campaign=campaign).assignment
    with pytest.raises(ApplicationError) as err:
        annotation_submit(assignment_id=a.pk, rater=r1, data=answer(misaligned_words=[3]))
    assert err.value.field == "misaligned_words"
    a.refresh_from_db()
    assert a.state == AssignmentState.LEASED and not Annotation.objects.exists()


def test_someone_elses_assignment_looks_missing(raters, make_item):
    campaign, (r1, r2, _) = raters
    make_item(campaign)
    a = assignment_next(rater=r1, campaign=campaign).assignment
    for call in (
        lambda: annotation_submit(assignment_id=a.pk, rater=r2, data=answer()),
        lambda: assignment_heartbeat(assignment_id=a.pk, rater=r2),
        lambda: assignment_skip(assignment_id=a.pk, rater=r2, reason="x"),
    ):
        with pytest.raises(ApplicationError) as err:
            call()
        assert err.value.status_code == 404


def test_database_refuses_a_second_assignment_for_the_same_rater_and_item(raters, make_item):
    campaign, (r1, _, _) = raters
    item = make_item(campaign)
    now = timezone.now()
    Assignment.objects.create(item=item, rater=r1, leased_at=now, expires_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(item=item, rater=r1, leased_at=now, expires_at=now, state=AssignmentState.SKIPPED)


@pytest.mark.parametrize("bad", [0, 6])
def test_database_refuses_scores_outside_likert(raters, make_item, bad):
    campaign, (r1, _, _) = raters
    item = make_item(campaign)
    now = timezone.now()
    a = Assignment.objects.create(item=item, rater=r1, leased_at=now, expires_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(
            assignment=a, item=item, rater=r1, plausibility=bad, alignment=3, aesthetics=3, overall=3
        )


def test_lookahead_holds_one_more_lease_and_promotes_it_after_submit(raters, make_item):
    campaign, (r1, _, _) = raters
    first, second, third = make_item(campaign), make_item(campaign), make_item(campaign)
    result = assignment_next(rater=r1, campaign=campaign, lookahead=1)
    assert result.assignment.item == first and [a.item for a in result.upcoming] == [second]
    # Asking again changes nothing.
    again = assignment_next(rater=r1, campaign=campaign, lookahead=1)
    assert again.assignment.pk == result.assignment.pk and again.upcoming[0].pk == result.upcoming[0].pk
    annotation_submit(assignment_id=result.assignment.pk, rater=r1, data=answer())
    after = assignment_next(rater=r1, campaign=campaign, lookahead=1)
    assert after.assignment.item == second and [a.item for a in after.upcoming] == [third]
    with pytest.raises(ApplicationError):
        assignment_next(rater=r1, campaign=campaign, lookahead=5)


def test_heartbeat_also_keeps_the_preloaded_lease_alive(raters, make_item):
    campaign, (r1, _, _) = raters
    make_item(campaign)
    make_item(campaign)
    t0 = timezone.now()
    result = assignment_next(rater=r1, campaign=campaign, lookahead=1, now=t0)
    t1 = t0 + timedelta(minutes=campaign.lease_minutes - 1)
    assignment_heartbeat(assignment_id=result.assignment.pk, rater=r1, now=t1)
    upcoming = Assignment.objects.get(pk=result.upcoming[0].pk)
    assert upcoming.expires_at == t1 + timedelta(minutes=campaign.lease_minutes)


def test_partly_done_items_come_first_even_when_their_lease_expired(raters, make_item, make_user):
    """An item with one answer and no live lease is still 'in progress' for the queue."""
    campaign, (r1, r2, r3) = raters
    t0 = timezone.now()
    started = make_item(campaign)
    make_item(campaign, priority=5.0)
    a = assignment_next(rater=r1, campaign=campaign, now=t0).assignment
    assert a.item.priority == 5.0
    annotation_submit(assignment_id=a.pk, rater=r1, data=answer(), now=t0)
    b = assignment_next(rater=r1, campaign=campaign, now=t0).assignment
    assert b.item == started
    later = t0 + timedelta(hours=2)  # r1's lease on `started` lapsed; the other item has 1 answer
    assert assignment_next(rater=r2, campaign=campaign, now=later).assignment.item == a.item


def test_items_with_answers_come_before_items_only_leased(raters, make_item, make_user):
    """Among items in progress, one with an answer is closer to done than one only leased by
    someone else, whatever their priority: the queue hands out the answered one first, on
    the rater API's path (one statement) and the service's alike."""
    from annotation.services import assignment_next_for_member

    campaign, (r1, r2, r3) = raters
    answered = make_item(campaign)
    a = assignment_next(rater=r1, campaign=campaign).assignment
    annotation_submit(assignment_id=a.pk, rater=r1, data=answer())
    leased_only = make_item(campaign, priority=5.0)
    r4 = make_user("r4", "rater")
    campaign_add_raters(campaign=campaign, users=[r4])
    now = timezone.now()
    Assignment.objects.create(
        item=leased_only, rater=r4, state=AssignmentState.LEASED, leased_at=now, expires_at=now + timedelta(hours=1)
    )
    assert assignment_next(rater=r2, campaign=campaign).assignment.item == answered
    via_api = assignment_next_for_member(rater=r3, campaign_id=campaign.pk).assignment
    assert via_api is not None and via_api.item == answered
    # Once the answered item is full, the leased one comes before untouched ones of any priority.
    make_item(campaign, priority=9.0)
    r5 = make_user("r5", "rater")
    campaign_add_raters(campaign=campaign, users=[r5])
    assert assignment_next(rater=r5, campaign=campaign).assignment.item == leased_only


def test_extra_rater_reopens_a_complete_item_for_one_more_distinct_rater(raters, make_item, make_user):
    from annotation.services import item_request_extra_rater

    campaign, users = raters
    item = make_item(campaign)
    for user in users:
        a = assignment_next(rater=user, campaign=campaign).assignment
        annotation_submit(assignment_id=a.pk, rater=user, data=answer())
    item.refresh_from_db()
    assert item.completed_at is not None
    r4, r5 = make_user("r4", "rater"), make_user("r5", "rater")
    campaign_add_raters(campaign=campaign, users=[r4, r5])
    assert assignment_next(rater=r4, campaign=campaign).reason == "new"  # never answered here
    item_request_extra_rater(item_id=item.pk)
    assert assignment_next(rater=users[0], campaign=campaign).reason == "done"  # never the same rater twice
    extra = assignment_next(rater=r4, campaign=campaign).assignment
    assert extra.item == item
    assert assignment_next(rater=r5, campaign=campaign).reason == "busy"  # only one extra slot
    annotation_submit(assignment_id=extra.pk, rater=r4, data=answer())
    item.refresh_from_db()
    assert item.completed_at is not None and item.n_submitted == 4
    assert assignment_next(rater=r5, campaign=campaign).reason == "new"
