"""Dashboard fixtures: annotations written straight to the database (no lease dance), and the
browser set-up (Playwright's sync API runs an event loop in the test thread)."""

from __future__ import annotations

import os

import pytest
from django.utils import timezone

from modeling.protocol import SCORE_NAMES

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def rate():
    """rate(item, user, scores=(p, a, ae, o), words=[...], implausible=[[x, y]], ...) -> Annotation."""
    from annotation.models import Annotation, Assignment, AssignmentState

    def make(item, user, scores=(3, 3, 3, 3), words=(), implausible=(), misaligned=(), time_ms=10_000):
        now = timezone.now()
        assignment = Assignment.objects.create(
            item=item, rater=user, state=AssignmentState.SUBMITTED, leased_at=now, expires_at=now, finished_at=now
        )
        return Annotation.objects.create(
            assignment=assignment,
            item=item,
            rater=user,
            implausible_points=[list(p) for p in implausible],
            misaligned_points=[list(p) for p in misaligned],
            misaligned_words=sorted(words),
            time_spent_ms=time_ms,
            **dict(zip(SCORE_NAMES, scores, strict=True)),
        )

    return make
