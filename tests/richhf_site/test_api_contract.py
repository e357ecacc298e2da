"""The OpenAPI document against the running application (issue 12, "An exact schema").

Schemathesis generates requests from /api/schema/ for every operation and checks each answer:
no 5xx, a documented status, the documented content type, and a body that matches the
documented schema, 4xx included. It runs once per role (rater, lead, admin; token auth).

The requests go through Django's WSGI application in this process, on the test's connection
(inside its transaction, as Django's test client runs them), against a world committed once
for the module and flushed at its end.
Schemathesis' lazy pytest loader (`from_fixture`) breaks on pytest 9 (it sets
`Function._nodeid`), so the schema is loaded at import and every operation is its own test.

Bounded: positive data only, a few examples per operation, no shrinking, no stateful phase;
about a minute in all. Path ids are mapped onto objects that exist about half the time, so
the handlers' 200s are checked, not only their 404s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import png_bytes, submitted_annotation

# Each test runs in a transaction that is rolled back, so every operation starts from the same
# committed world (the module fixture's); the requests share this thread's connection.
pytestmark = [pytest.mark.slow, pytest.mark.django_db]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ("rater", "lead", "admin")

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "positive", "no-shrink": True, "deterministic": True},
        # The stateful phase chains operations through links; this run checks single answers.
        "phases": {"stateful": {"enabled": False}},
    }
)

APP = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/", APP, config=CONFIG)


@pytest.fixture(scope="module")
def world(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A campaign with a rater, a lead and an admin; a submitted and aggregated item, a leased
    one, campaign statistics, a finished export and a failed model version: most operations
    have something real to show.
    Committed once for the module (each test's own writes roll back) and flushed at its end."""
    from django.contrib.auth import get_user_model

    from aggregation.dashboard.services.recompute import campaign_stats_recompute
    from aggregation.exports.models import ExportJob
    from aggregation.exports.services import export_job_run
    from aggregation.learning.models import ModelVersion, VersionStatus
    from aggregation.services.aggregates import item_aggregate_upsert
    from annotation.models import Campaign
    from annotation.services import ItemInput, assignment_next, campaign_add_raters, item_create
    from richhf_site.roles import user_add_role

    media_root = tmp_path_factory.mktemp("contract-media")
    with override_settings(MEDIA_ROOT=media_root), django_db_blocker.unblock():
        users = {}
        for role in ROLES:
            users[role] = get_user_model().objects.create_user(username=f"contract-{role}", password="pw-for-tests")
            user_add_role(user=users[role], role=role)
        campaign = Campaign.objects.create(name="contract", raters_per_item=1)
        campaign_add_raters(campaign=campaign, users=[users["rater"]])
        items = [
            item_create(
                campaign=campaign,
                data=ItemInput(image_bytes=png_bytes(seed=i), filename=f"contract{i}.png", prompt=f"a red cat {i}"),
            )[0]
            for i in range(3)
        ]
        done = submitted_annotation(items[0], users["rater"], words=(1,), implausible=((0.2, 0.3),))
        items[0].completed_at = timezone.now()
        items[0].save(update_fields=["completed_at"])
        item_aggregate_upsert(item_id=items[0].pk)
        campaign_stats_recompute(campaign_id=campaign.pk)
        leased = assignment_next(rater=users["rater"], campaign=campaign).assignment
        # Run here rather than enqueued: no message outlives the module for a later worker,
        # and the download answers with its archive.
        job = ExportJob.objects.create(campaign=campaign, format="jsonl", requested_by=users["admin"])
        export_job_run(job_id=job.pk)
        # A failed run: listed by the versions API, refused (409) by activate.
        version = ModelVersion.objects.create(
            campaign=campaign, status=VersionStatus.FAILED, error="no data", finished_at=timezone.now()
        )
        tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
        yield {
            "media_root": media_root,
            "tokens": tokens,
            "ids": {
                "campaign_id": [campaign.pk],
                "item_id": [items[0].pk, items[1].pk],
                "assignment_id": [a.pk for a in (done.assignment, leased) if a is not None],
                "job_id": [job.pk],
                "version_id": [version.pk],
            },
        }
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def _keep_connection_open() -> Iterator[None]:
    """The WSGI handler closes the connection after each request, which would end the test's
    transaction; Django's test client unhooks the same receiver for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _contract_test(role: str) -> Callable[..., None]:
    """One test per role; schemathesis makes each operation a test of its own."""

    @schema.parametrize()
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def test(case: Any, world: dict[str, Any], _keep_connection_open: None, settings: Any) -> None:
        settings.MEDIA_ROOT = world["media_root"]
        # Ids drawn at random almost never exist: about half of them are mapped onto objects
        # that do, so the handlers' 200s (and 409s) are checked too, not only their 404s.
        for name, value in list((case.path_parameters or {}).items()):
            known = world["ids"].get(name)
            if known and isinstance(value, int):
                pick = value % (2 * len(known))
                case.path_parameters[name] = known[pick] if pick < len(known) else value
        case.call_and_validate(headers={"Authorization": f"Token {world['tokens'][role]}"}, checks=CHECKS)

    test.__name__ = f"test_{role}_answers_match_the_schema"
    return test


test_rater_answers_match_the_schema = _contract_test("rater")
test_lead_answers_match_the_schema = _contract_test("lead")
test_admin_answers_match_the_schema = _contract_test("admin")
