"""Writes of a rater's draft: the unsaved state of a live lease (issue 15).

A draft is saved as the rater works, so a reload or another device restores it exactly. It is
never an answer (nothing counts, aggregates or exports it), and it goes when the lease is
submitted, skipped or expires (annotation.services deletes it there). Reads are in selectors.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from richhf_site.errors import ApplicationError, Conflict

from .models import AssignmentState, Draft
from .services import _get_own_assignment_locked


@transaction.atomic
def draft_save(*, assignment_id: int, rater, answer: dict[str, Any], time_spent_ms: int, now=None) -> Draft:
    """Stores (replaces) the draft of the caller's live lease.

    The shape of `answer` is the API serializer's check; here: the assignment is the caller's
    (404 otherwise, like a missing one), the lease is live (409: a draft of a finished or
    expired lease would never be seen again), and word indices fall inside the prompt. Holds
    the assignment's row lock, as submit, skip and the expiry sweeper do, so a draft never
    outlives its lease.
    """
    now = now or timezone.now()
    assignment = _get_own_assignment_locked(assignment_id=assignment_id, rater=rater)
    if assignment.state != AssignmentState.LEASED or assignment.expires_at <= now:
        raise Conflict(
            _("This item is no longer reserved for you, so its draft was not saved."),
            extra={"code": "lease_not_live"},
        )
    n_words = len(assignment.item.words)
    bad = [i for i in answer.get("misaligned_words", []) if not 0 <= i < n_words]
    if bad:
        raise ApplicationError(
            _("word index %(index)d is outside the prompt, which has %(n)d words") % {"index": bad[0], "n": n_words},
            field="answer.misaligned_words",
        )
    draft, _created = Draft.objects.update_or_create(
        assignment=assignment, defaults={"answer": answer, "time_spent_ms": time_spent_ms}
    )
    return draft


@transaction.atomic
def draft_delete(*, assignment_id: int, rater) -> None:
    """Deletes the draft of the caller's assignment, if any (404 if the assignment is not theirs)."""
    assignment = _get_own_assignment_locked(assignment_id=assignment_id, rater=rater)
    Draft.objects.filter(assignment=assignment).delete()
