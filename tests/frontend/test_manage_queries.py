"""The admin pages cost a fixed number of queries however many rows they list."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from aggregation.exports.models import ExportJob, ImportJob

pytestmark = pytest.mark.django_db


def fill(make_campaign, make_user, n: int) -> None:
    admin = make_user(f"a{n}", "admin")
    for i in range(n):
        campaign = make_campaign(f"c{n}-{i}")
        ExportJob.objects.create(campaign=campaign, format="jsonl", requested_by=admin)
        ImportJob.objects.create(campaign=campaign, kind="items", upload_prefix="uploads/x", requested_by=admin)
        ImportJob.objects.create(campaign=campaign, kind="release", upload_prefix="uploads/y", requested_by=admin)


@pytest.mark.parametrize("name", ["manage:campaigns", "manage:uploads", "manage:imports", "manage:exports"])
def test_list_pages_do_not_query_per_row(name, make_user, make_campaign, django_assert_max_num_queries):
    client = Client()
    client.force_login(make_user("root", "admin"))
    fill(make_campaign, make_user, 2)
    with django_assert_max_num_queries(12) as few:
        assert client.get(reverse(name)).status_code == 200
    fill(make_campaign, make_user, 15)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse(name)).status_code == 200
