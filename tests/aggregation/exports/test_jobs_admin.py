"""The Django admin's job pages: links that work, progress as a percentage, right names."""

from __future__ import annotations

import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from aggregation.exports.models import ExportJob, ImportJob

pytestmark = pytest.mark.django_db


def test_export_job_admin_links_download_and_shows_a_percentage(make_user, make_campaign):
    superuser = make_user("super")
    superuser.is_superuser = superuser.is_staff = True
    superuser.save()
    client = Client()
    client.force_login(superuser)
    job = ExportJob.objects.create(campaign=make_campaign("c"), format="jsonl", status="succeeded", progress=1.0)
    job.archive.save("c-jsonl-1.zip", io.BytesIO(b"PK\x05\x06" + b"\0" * 18), save=True)
    for url in (
        reverse("admin:exports_exportjob_changelist"),
        reverse("admin:exports_exportjob_change", args=[job.pk]),
    ):
        page = client.get(url).content.decode()
        assert "100%" in page
        assert "0..1" not in page and ">1.0<" not in page
        # Every link on the page that points at the archive works (no /media/ URL, never routed).
        links = set(re.findall(r'href="([^"]*)"', page))
        assert not any("/media/" in link or link.endswith(".zip") for link in links)
        download = reverse("exports:download", args=[job.pk])
        assert download in links
        assert client.get(download).status_code == 200


def test_import_job_admin_and_learning_settings_name(make_user, make_campaign):
    superuser = make_user("super")
    superuser.is_superuser = superuser.is_staff = True
    superuser.save()
    client = Client()
    client.force_login(superuser)
    job = ImportJob.objects.create(
        campaign=make_campaign("c"), kind="items", upload_prefix="uploads/x", progress=0.25, problems=["a.csv:2: bad"]
    )
    page = client.get(reverse("admin:exports_importjob_changelist")).content.decode()
    assert "25%" in page
    change = client.get(reverse("admin:exports_importjob_change", args=[job.pk])).content.decode()
    assert reverse("manage:import-job", args=[job.pk]) in change and "25%" in change
    index = client.get(reverse("admin:index")).content.decode()
    assert "Learning settings" in index and "settingss" not in index
