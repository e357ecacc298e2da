"""Statements compiled once per process (richhf_site.sqltemplates): the filled template is the
statement a fresh ORM build gives, and a build it cannot trace is built on every call."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from annotation.models import Assignment, Item
from richhf_site.sqltemplates import SQLTemplate

pytestmark = pytest.mark.django_db


def _build(*, campaign_id: int, rater, now):
    queue = (
        Item.objects.filter(campaign_id=campaign_id, completed_at__isnull=True)
        .exclude(pk__in=Assignment.objects.filter(rater=rater, expires_at__gt=now).values("item_id"))
        .order_by("-priority", "id")
        .values("pk")[:1]
    )
    sql, params = queue.query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def test_the_filled_template_is_what_a_fresh_build_gives():
    User = get_user_model()
    calls = []

    def counted(**kw):
        calls.append(1)
        return _build(**kw)

    template = SQLTemplate(counted)
    now = timezone.now()
    for campaign_id, username, minutes in [(1, "a", 0), (7, "b", 5), (123456, "c", -90)]:
        rater = User(pk=len(username) + campaign_id, username=username)
        when = now + timedelta(minutes=minutes)
        assert template(campaign_id=campaign_id, rater=rater, now=when) == _build(
            campaign_id=campaign_id, rater=rater, now=when
        )
    # Built twice on the first call (stand-ins, then the real values as a check), never again.
    assert len(calls) == 2


def test_a_lazy_request_user_compiles_the_template_like_a_plain_user():
    """request.user is a SimpleLazyObject: its type is the wrapper, not the model. The first
    call of a process may come from a browser session, so the stand-in must be built from the
    model all the same (this once broke every session's first next-item with a 500)."""
    from django.utils.functional import SimpleLazyObject

    User = get_user_model()
    template = SQLTemplate(_build)
    now = timezone.now()
    lazy = SimpleLazyObject(lambda: User(pk=42, username="lazy"))
    assert template(campaign_id=3, rater=lazy, now=now) == _build(campaign_id=3, rater=lazy, now=now)
    assert template._templates[connection.vendor] is not None
    plain = User(pk=7, username="plain")
    assert template(campaign_id=4, rater=plain, now=now) == _build(campaign_id=4, rater=plain, now=now)


def test_a_value_without_a_stand_in_falls_back_to_building_every_call(caplog):
    def with_text(*, campaign_id: int, label: str):
        return "SELECT %s, %s", [campaign_id, label]

    template = SQLTemplate(with_text)
    assert template(campaign_id=1, label="a") == ("SELECT %s, %s", [1, "a"])
    assert template(campaign_id=2, label="b") == ("SELECT %s, %s", [2, "b"])
    assert template._templates[connection.vendor] is None
    assert "could not compile" in caplog.text


def test_a_build_that_transforms_its_values_is_built_every_call():
    def shifted(*, campaign_id: int):
        return "SELECT %s", [campaign_id + 1]  # the value cannot be traced back

    template = SQLTemplate(shifted)
    assert template(campaign_id=1) == ("SELECT %s", [2])
    assert template(campaign_id=41) == ("SELECT %s", [42])


def test_the_rater_apis_lock_statement_runs_from_its_template(raters, make_item):
    """On PostgreSQL the next-item statement is compiled once: if the template ever stopped
    matching the ORM's build, this would show it (the optimisation would silently be off)."""
    from annotation import services

    if connection.vendor != "postgresql":
        pytest.skip("the lock statement is PostgreSQL's")
    campaign, (r1, r2, _) = raters
    make_item(campaign)
    assert services.assignment_next_for_member(rater=r1, campaign_id=campaign.pk).assignment is not None
    assert services._LOCK_STATEMENT._templates.get("postgresql") is not None
    assert services.assignment_next_for_member(rater=r2, campaign_id=campaign.pk).assignment is not None


def test_a_browser_sessions_first_next_item_compiles_the_lock_statement(raters, make_item, monkeypatch):
    """The rater page authenticates with its session (request.user is lazy). As the first
    next-item of a fresh process, it must lease (200) and leave the template compiled."""
    from django.test import Client
    from django.urls import reverse

    from annotation import services

    if connection.vendor != "postgresql":
        pytest.skip("the lock statement is PostgreSQL's")
    monkeypatch.setattr(services._LOCK_STATEMENT, "_templates", {})
    campaign, (r1, _, _) = raters
    make_item(campaign)
    client = Client()
    client.force_login(r1)
    response = client.post(reverse("api:next-item", args=[campaign.pk]), {}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "leased"
    assert services._LOCK_STATEMENT._templates.get("postgresql") is not None
