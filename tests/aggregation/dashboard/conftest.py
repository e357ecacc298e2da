"""Dashboard fixtures: annotations written straight to the database (no lease dance), and the
browser set-up (Playwright's sync API runs an event loop in the test thread)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import submitted_annotation

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def rate():
    """rate(item, user, scores=(p, a, ae, o), words=[...], implausible=[[x, y]], ...) -> Annotation."""
    return submitted_annotation
