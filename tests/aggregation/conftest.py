"""Factories for aggregation tests: complete items written straight to the database.

(The end-to-end test goes through the rater API instead; these skip the lease dance so the
service tests stay fast and never enqueue a task.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}


def answer(implausible=(), misaligned=(), words=(), **scores) -> dict:
    return {
        "implausible_points": [list(p) for p in implausible],
        "misaligned_points": [list(p) for p in misaligned],
        "misaligned_words": sorted(words),
        "scores": {**SCORES, **scores},
    }


@pytest.fixture
def annotate():
    """annotate(item, users, answers, completed_ago=...) -> annotations; marks the item complete."""
    from annotation.models import Annotation, Assignment, AssignmentState

    def make(item, users, answers, completed_ago: timedelta = timedelta(minutes=10)):
        now = timezone.now()
        out = []
        for user, body in zip(users, answers, strict=True):
            assignment = Assignment.objects.create(
                item=item, rater=user, state=AssignmentState.SUBMITTED, leased_at=now, expires_at=now, finished_at=now
            )
            out.append(
                Annotation.objects.create(
                    assignment=assignment,
                    item=item,
                    rater=user,
                    implausible_points=body["implausible_points"],
                    misaligned_points=body["misaligned_points"],
                    misaligned_words=body["misaligned_words"],
                    **body["scores"],
                )
            )
        item.completed_at = now - completed_ago
        item.save(update_fields=["completed_at"])
        return out

    return make
