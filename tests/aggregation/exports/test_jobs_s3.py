"""Uploads on object storage (RICHHF_STORAGE=s3): the upload is kept in the bucket, the job
reads it from there, not from a local path, and deletes it when done."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregation.exports import jobs
from annotation.models import Item
from tests.aggregation.exports.test_jobs import bad_rows_zip, upload
from tests.test_scale_out import BUCKET, _bucket_keys, s3_env  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def s3_storage(s3_env, settings, monkeypatch):  # noqa: F811
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, s3_env[key])
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_env["AWS_S3_ENDPOINT_URL"],
                "region_name": s3_env["AWS_S3_REGION_NAME"],
                "addressing_style": "path",
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }
    return s3_env


def test_upload_lives_in_the_bucket_until_the_job_is_done(s3_storage, make_campaign, settings):
    campaign = make_campaign("s3")
    before = _bucket_keys(s3_storage)  # moto keeps its buckets for the whole process
    job = jobs.import_job_create(campaign=campaign, kind="items", uploads=[upload("batch.zip", bad_rows_zip())])
    keys = _bucket_keys(s3_storage) - before
    assert keys == set(job.files) and all(k.startswith("uploads/") for k in keys)
    # Nothing of the upload on the web machine's disk: the worker can only get it from the bucket.
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
    job = jobs.import_job_run(job_id=job.pk)
    assert job.status == "succeeded", job.error
    assert (job.imported, len(job.problems)) == (2, 5)
    keys = _bucket_keys(s3_storage)
    assert not any(k.startswith("uploads/") for k in keys)
    images = {item.image.name for item in Item.objects.filter(campaign=campaign)}
    assert len(images) == 2 and images <= keys


def test_refused_upload_leaves_nothing_in_the_bucket(s3_storage, make_campaign):
    campaign = make_campaign("s3-bad")
    before = _bucket_keys(s3_storage)  # moto keeps its buckets for the whole process
    with pytest.raises(jobs.UploadRejected):
        jobs.import_job_create(campaign=campaign, kind="items", uploads=[upload("x.zip", b"nope")])
    assert _bucket_keys(s3_storage) == before
