"""Comparing a new version with the active one holds no lock while it evaluates: an admin's
activation during the evaluation goes through at once, and the new version is then
compared with the admin's choice. Committed transactions and a second connection, as in
production (the evaluation itself is replaced by fixed scores)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connection, transaction

from aggregation.learning.models import ModelVersion
from aggregation.learning.services import evaluation

pytestmark = pytest.mark.django_db(transaction=True)


def _versions(make_campaign, name: str) -> tuple[ModelVersion, ModelVersion, ModelVersion]:
    campaign = make_campaign(name)
    active = ModelVersion.objects.create(campaign=campaign, status="done", is_active=True, activated_by="rule")
    admin_choice = ModelVersion.objects.create(campaign=campaign, status="done", combined_metric=0.2)
    new = ModelVersion.objects.create(campaign=campaign, status="running", combined_metric=0.3)
    return active, admin_choice, new


@pytest.mark.parametrize(("admin_choice_score", "new_wins"), [(0.1, True), (0.9, False)])
def test_an_admin_activates_during_the_evaluation_without_waiting(
    make_campaign, make_user, monkeypatch, tmp_path: Path, admin_choice_score: float, new_wins: bool
):
    active, admin_choice, new = _versions(make_campaign, f"al-eval-{new_wins}")
    admin = make_user("admin", "admin")
    enqueued: list[int] = []
    monkeypatch.setattr(evaluation, "_enqueue_predict", enqueued.append)
    admin_call: dict[str, object] = {}

    def activate_from_another_connection() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '3s'")  # the old code held the lock for minutes
                evaluation.version_activate(version=admin_choice, user=admin)
                admin_call["done"] = True
        except Exception as exc:  # reported below: the assertion names the lock timeout
            admin_call["error"] = exc
        finally:
            connection.close()

    evaluated: list[int] = []

    def evaluate(*, version: ModelVersion, data: Path) -> float:
        evaluated.append(version.pk)
        if version.pk == active.pk:  # the admin acts while the active version is being evaluated
            thread = threading.Thread(target=activate_from_another_connection)
            thread.start()
            thread.join(timeout=30)
        return {active.pk: 0.5, admin_choice.pk: admin_choice_score}[version.pk]

    monkeypatch.setattr(evaluation, "version_evaluate_on", evaluate)
    assert evaluation.version_compare_and_activate(version=new, data=tmp_path) is new_wins

    assert admin_call == {"done": True}, admin_call.get("error")
    assert enqueued == [admin_choice.pk]  # the admin's activation recomputes the predictions
    # The new version was compared with the admin's choice, not the version it replaced.
    assert evaluated == [active.pk, admin_choice.pk]
    for version in (active, admin_choice, new):
        version.refresh_from_db()
    assert new.status == "done" and new.finished_at is not None
    assert new.compared_with == {"version": admin_choice.pk, "combined": admin_choice_score}
    assert not active.is_active
    assert new.is_active is new_wins and admin_choice.is_active is not new_wins
    assert (new if new_wins else admin_choice).activated_by == ("rule" if new_wins else "admin")


def test_an_admin_who_keeps_switching_keeps_the_last_choice(make_campaign, make_user, monkeypatch, tmp_path):
    active, first_choice, new = _versions(make_campaign, "al-eval-switching")
    second_choice = ModelVersion.objects.create(campaign=new.campaign, status="done", combined_metric=0.1)
    admin = make_user("admin", "admin")
    monkeypatch.setattr(evaluation, "_enqueue_predict", lambda version_id: None)
    choices = iter([first_choice, second_choice, first_choice])

    def evaluate(*, version: ModelVersion, data: Path) -> float:
        evaluation.version_activate(version=next(choices), user=admin)
        return 0.0  # the new version would win each comparison

    monkeypatch.setattr(evaluation, "version_evaluate_on", evaluate)
    assert evaluation.version_compare_and_activate(version=new, data=tmp_path) is False
    new.refresh_from_db()
    first_choice.refresh_from_db()
    assert new.status == "done" and not new.is_active
    assert new.compared_with == {"version": second_choice.pk, "combined": 0.0}
    assert first_choice.is_active and first_choice.activated_by == "admin"
