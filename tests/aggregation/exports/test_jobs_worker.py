"""An upload handed to a real Celery worker: the files travel through the default storage
(the bucket under RICHHF_STORAGE=s3), never a path on the web machine's disk."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.urls import reverse

from aggregation.exports.models import ImportJob
from annotation.models import Item
from tests.aggregation.exports.test_export_import import worker_media  # noqa: F401 (fixture)
from tests.aggregation.exports.test_jobs import bad_rows_zip
from tests.conftest import api_client_for, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_worker_imports_an_upload_from_the_storage_and_deletes_it(
    transactional_db,
    worker_media,  # noqa: F811
    make_user,
    make_campaign,
    settings,
):
    campaign = make_campaign("via-worker")
    client = api_client_for(make_user("root", "admin"))
    archive = io.BytesIO(bad_rows_zip())
    archive.name = "batch.zip"
    response = client.post(
        reverse("exports:campaign-imports", args=[campaign.pk]),
        {"kind": "items", "files": [archive]},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    stored = ImportJob.objects.get(pk=job_id).files
    assert stored and all(name.startswith("uploads/") for name in stored)
    job = wait_for(
        lambda: ImportJob.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
        timeout=60,
        what="import job",
    )
    assert job.status == "succeeded", job.error
    assert (job.imported, len(job.problems), job.progress) == (2, 5, 1.0)
    assert Item.objects.filter(campaign=campaign).count() == 2
    media = Path(settings.MEDIA_ROOT)
    assert not any((media / name).exists() for name in stored)
