"""Upload and import jobs (aggregation/exports/jobs.py, uploads.py): what an admin's upload becomes.

The job runs here in-process (import_job_run, the task's body); test_jobs_worker.py runs the
same through a real Celery worker.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from aggregation.exports import jobs
from aggregation.exports.models import ExportJob, ImportedLabel, ImportJob
from aggregation.exports.services import export_job_run
from annotation.models import Campaign, Item
from tests.aggregation.exports.test_export_import import annotated  # noqa: F401 (fixture)
from tests.conftest import api_client_for, png_bytes

pytestmark = pytest.mark.django_db


def upload(name: str, data: bytes) -> jobs.UploadedFile:
    return jobs.UploadedFile(name=name, size=len(data), handle=io.BytesIO(data))


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def stored_files(settings) -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


BAD_ROWS_CSV = (
    "image,prompt,split,generator\n"
    "a.png,a yellow cat on a red sofa,train,sdxl\n"  # 2: good
    "missing.png,a dog,train,sdxl\n"  # 3: no such image
    "b.png,,train,dalle3\n"  # 4: no prompt
    "c.png,two dogs and a ball,holdout,dalle3\n"  # 5: bad split
    "notimage.png,an astronaut,dev,\n"  # 6: not an image
    "../escape.png,an astronaut,dev,\n"  # 7: outside the upload
    "d.png,an astronaut riding a horse,dev,dalle3\n"  # 8: good
)


def bad_rows_zip() -> bytes:
    return zip_of(
        {
            "batch/items.csv": BAD_ROWS_CSV.encode(),
            "batch/a.png": png_bytes(seed=1),
            "batch/b.png": png_bytes(seed=2),
            "batch/c.png": png_bytes(seed=3),
            "batch/d.png": png_bytes(seed=4),
            "batch/notimage.png": b"this is text, not a PNG",
        }
    )


def test_zip_with_bad_rows_imports_the_good_ones_and_names_each_bad_row(make_campaign, make_user, settings):
    campaign = make_campaign("batch")
    admin = make_user("root", "admin")
    job = jobs.import_job_create(
        campaign=campaign, kind="items", uploads=[upload("batch.zip", bad_rows_zip())], requested_by=admin
    )
    assert job.status == "queued" and job.progress == 0
    assert any(name.startswith("uploads/") for name in stored_files(settings))
    job = jobs.import_job_run(job_id=job.pk)
    assert job.status == "succeeded", job.error
    assert job.progress == 1.0
    assert (job.imported, job.already_present) == (2, 0)
    assert [p.split(":", 2)[:2] for p in job.problems] == [["batch/items.csv", str(n)] for n in (3, 4, 5, 6, 7)]
    assert "missing.png" in job.problems[0] and "not found" in job.problems[0]
    assert "no prompt" in job.problems[1]
    assert "split must be one of" in job.problems[2]
    assert job.problems[3] == "batch/items.csv:6: notimage.png: not a readable image (unknown or damaged format)"
    assert "points outside" in job.problems[4]
    # Files are named as uploaded, never by the worker's temporary folder.
    assert job.problems[0] == "batch/items.csv:3: image 'missing.png' not found in batch"
    assert not any("/tmp" in p or "richhf-import" in p for p in job.problems)
    items = {i.source_id: i for i in Item.objects.filter(campaign=campaign)}
    assert set(items) == {"a.png", "d.png"}
    assert items["a.png"].generator == "sdxl" and items["d.png"].generator == "dalle3"
    assert items["d.png"].split == "dev"
    # The worker deleted the upload: only the two item images are left in the storage.
    assert not any(name.startswith("uploads/") for name in stored_files(settings))
    # A second run of the same message does nothing (the claim).
    again = jobs.import_job_run(job_id=job.pk)
    assert again.imported == 2 and Item.objects.filter(campaign=campaign).count() == 2


def test_loose_images_and_a_jsonl_manifest(make_campaign, settings):
    campaign = make_campaign("loose")
    manifest = "\n".join(
        json.dumps(row)
        for row in [
            {"image": "x.png", "prompt": "a red cube", "generator": "imagen"},
            {"image": "y.png", "prompt": "a blue sphere", "priority": "high"},
        ]
    )
    job = jobs.import_job_create(
        campaign=campaign,
        kind="items",
        uploads=[
            upload("items.jsonl", manifest.encode()),
            upload("x.png", png_bytes(seed=7)),
            upload("y.png", png_bytes(seed=8)),
        ],
        split="test",
    )
    job = jobs.import_job_run(job_id=job.pk)
    assert job.imported == 1
    assert job.problems == ["items.jsonl:2: priority must be a finite number, not 'high'"]
    item = Item.objects.get(campaign=campaign)
    assert (item.generator, item.split) == ("imagen", "test")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notazip.zip": b"PK not really"}, "not a zip archive"),
        ({"empty.zip": zip_of({"a.png": png_bytes()})}, "no items.jsonl"),
        ({"evil.zip": zip_of({"../items.csv": b"image,prompt\n", "a.png": png_bytes()})}, "points outside the archive"),
        ({"bad.zip": zip_of({"items.csv": b"\xff\xfe\x00 not utf-8"})}, "items.csv:1: not UTF-8"),
        ({"items.csv": b"image,prompt\n", "a.png": png_bytes()}, "the manifest has no rows"),
        ({"a.png": png_bytes(), "b.png": png_bytes(seed=3)}, "exactly one manifest"),
        ({"items.csv": b"image,prompt\na.png,x\n", "run.exe": b"MZ"}, "run.exe: unexpected kind of file"),
        ({"one.zip": zip_of({"items.csv": b"image,prompt\n"}), "a.png": png_bytes()}, "one zip on its own"),
    ],
)
def test_malformed_upload_is_refused_and_leaves_nothing(make_campaign, settings, files, message):
    campaign = make_campaign("strict")
    before = stored_files(settings)
    with pytest.raises(jobs.UploadRejected, match=message):
        jobs.import_job_create(
            campaign=campaign, kind="items", uploads=[upload(name, data) for name, data in files.items()]
        )
    assert stored_files(settings) == before
    assert not ImportJob.objects.exists()


def test_oversized_upload_and_zip_bomb_are_refused(make_campaign, settings):
    campaign = make_campaign("big")
    settings.RICHHF_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(jobs.UploadRejected, match="the limit is 1,000") as err:
        jobs.import_job_create(campaign=campaign, kind="items", uploads=[upload("items.csv", b"x" * 1001)])
    assert err.value.status_code == 413
    settings.RICHHF_MAX_UPLOAD_BYTES = 100_000
    settings.RICHHF_MAX_UNZIPPED_BYTES = 50_000
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("items.csv", "image,prompt\n" + "a" * 60_000)
    assert len(bomb.getvalue()) < 1000
    with pytest.raises(jobs.UploadRejected, match="unpacks to more than 50,000"):
        jobs.import_job_create(campaign=campaign, kind="items", uploads=[upload("bomb.zip", bomb.getvalue())])
    assert stored_files(settings) == set() and not ImportJob.objects.exists()


def test_api_refuses_an_oversized_body_from_its_length_and_a_malformed_one_with_json(
    make_campaign, make_user, settings
):
    campaign = make_campaign("api")
    client = api_client_for(make_user("root", "admin"))
    url = reverse("exports:campaign-imports", args=[campaign.pk])
    settings.RICHHF_MAX_UPLOAD_BYTES = 2000
    big = io.BytesIO(b"x" * 2_000_000)
    big.name = "items.csv"
    response = client.post(url, {"kind": "items", "files": [big]}, format="multipart")
    assert response.status_code == 413
    assert (
        "the limit is 2,000" in response.json()["detail"]
        and response.json()["errors"] == {"files": [response.json()["detail"]]}
        or "files" in response.json()["errors"]
    )
    broken = io.BytesIO(b"not a zip")
    broken.name = "x.zip"
    response = client.post(url, {"kind": "items", "files": [broken]}, format="multipart")
    assert response.status_code == 400
    assert "x.zip: not a zip archive" in response.json()["detail"]
    response = client.post(url, {"kind": "nonsense"}, format="multipart")
    assert response.status_code == 400 and "kind" in response.json()["errors"]
    assert stored_files(settings) == set() and not ImportJob.objects.exists()


def test_upload_through_the_api_runs_after_commit(
    make_campaign, make_user, settings, monkeypatch, django_capture_on_commit_callbacks
):
    campaign = make_campaign("api2")
    client = api_client_for(make_user("root", "admin"))
    monkeypatch.setattr(jobs, "_import_job_enqueue", lambda job_id: jobs.import_job_run(job_id=job_id))
    archive = io.BytesIO(bad_rows_zip())
    archive.name = "batch.zip"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("exports:campaign-imports", args=[campaign.pk]),
            {"kind": "items", "files": [archive]},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    body = client.get(reverse("exports:import-job", args=[response.json()["id"]])).json()
    assert body["status"] == "succeeded" and body["imported"] == 2 and body["problems_count"] == 5
    assert body["file_names"] == ["batch.zip"]


def test_release_import_job_reimports_an_export_with_images(annotated, tmp_path, settings):  # noqa: F811
    """Export with images (the page's option) -> zip -> release import job into a new
    campaign: the same six items with their ground truth, and the generator column kept."""
    campaign, items = annotated
    Item.objects.filter(pk=items[0].pk).update(generator="sdxl")
    job = ExportJob.objects.create(campaign=campaign, format="tfrecord", with_images=True)
    job = export_job_run(job_id=job.pk)
    assert job.status == "succeeded", job.error
    with job.archive.open("rb") as handle:
        blob = handle.read()
    assert hashlib.sha256(blob).hexdigest() == job.sha256
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = set(zf.namelist())
        assert {"train.tfrecord", "dev.tfrecord", "test.tfrecord", "prompts.jsonl"} <= names
        assert sum(n.startswith("images/") for n in names) == 6
        # The prompts file carries the generator when one is known, so it survives a round trip.
        prompts = [json.loads(line) for line in zf.read("prompts.jsonl").decode().splitlines()]
    assert [p.get("generator") for p in prompts if p["filename"] == items[0].source_id] == ["sdxl"]
    copy = Campaign.objects.create(name="copy")
    # Another generator by hand, as a release user would write one, to check it is read.
    other = next(p for p in prompts if "generator" not in p)
    other["generator"] = "flux"
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n != "prompts.jsonl"}
    files["prompts.jsonl"] = "".join(json.dumps(p) + "\n" for p in prompts).encode()
    imp = jobs.import_job_create(campaign=copy, kind="release", uploads=[upload("release.zip", zip_of(files))])
    imp = jobs.import_job_run(job_id=imp.pk)
    assert imp.status == "succeeded", imp.error
    assert (imp.imported, imp.problems) == (6, [])
    assert ImportedLabel.objects.filter(item__campaign=copy).count() == 6
    assert Item.objects.get(campaign=copy, source_id=other["filename"]).generator == "flux"
    assert Item.objects.get(campaign=copy, source_id=items[0].source_id).generator == "sdxl"


def test_release_upload_without_tfrecords_or_prompts_is_refused(make_campaign):
    campaign = make_campaign("rel")
    with pytest.raises(jobs.UploadRejected, match="at least one .tfrecord"):
        jobs.import_job_create(campaign=campaign, kind="release", uploads=[upload("prompts.jsonl", b"{}\n")])
    with pytest.raises(jobs.UploadRejected, match="exactly one prompts file"):
        jobs.import_job_create(campaign=campaign, kind="release", uploads=[upload("train.tfrecord", b"")])
    with pytest.raises(jobs.UploadRejected, match="needs a filename"):
        jobs.import_job_create(
            campaign=campaign,
            kind="release",
            uploads=[upload("train.tfrecord", b""), upload("prompts.jsonl", b'{"x": 1}\n')],
        )


def test_export_job_split_and_with_images_options(annotated):  # noqa: F811
    campaign, _ = annotated
    job = export_job_run(job_id=ExportJob.objects.create(campaign=campaign, format="tfrecord", split="dev").pk)
    assert job.status == "succeeded", job.error
    with job.archive.open("rb") as handle, zipfile.ZipFile(handle) as zf:
        names = set(zf.namelist())
    assert "dev.tfrecord" in names and "train.tfrecord" not in names
    assert job.items_exported == 1  # of the six complete items (splits t, t, d, s, t, t) one is dev
    train = export_job_run(job_id=ExportJob.objects.create(campaign=campaign, format="parquet", split="train").pk)
    assert train.items_exported == 4


def test_export_api_refuses_options_that_do_not_fit_the_format(make_campaign, make_user):
    campaign = make_campaign("opts")
    client = api_client_for(make_user("root", "admin"))
    url = reverse("exports:campaign-exports", args=[campaign.pk])
    response = client.post(url, {"format": "jsonl", "with_images": True}, format="json")
    assert response.status_code == 400 and "with_images" in response.json()["errors"]
    response = client.post(url, {"format": "tfrecord", "include_image_bytes": True}, format="json")
    assert response.status_code == 400 and "include_image_bytes" in response.json()["errors"]
    response = client.post(url, {"format": "tfrecord", "split": "holdout"}, format="json")
    assert response.status_code == 400 and "split" in response.json()["errors"]
    assert not ExportJob.objects.exists()


def test_import_items_command_reads_the_generator_column(make_campaign, tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(seed=11))
    (tmp_path / "items.csv").write_text("image,prompt,generator\na.png,a cat,sdxl-1.0\n")
    call_command("import_items", str(tmp_path), "--campaign", "cli", "--no-progress")
    assert Item.objects.get(campaign__name="cli").generator == "sdxl-1.0"


def test_reconciler_enqueues_lost_jobs_and_reruns_those_whose_worker_died(make_campaign, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    campaign = make_campaign("lost")
    sent: list[int] = []
    monkeypatch.setattr(jobs, "task_publish", lambda task, job_id: sent.append(job_id))
    fresh = jobs.import_job_create(campaign=campaign, kind="items", uploads=[upload("batch.zip", bad_rows_zip())])
    lost = jobs.import_job_create(campaign=campaign, kind="items", uploads=[upload("batch.zip", bad_rows_zip())])
    dead = jobs.import_job_create(campaign=campaign, kind="items", uploads=[upload("batch.zip", bad_rows_zip())])
    old = timezone.now() - timedelta(hours=5)
    ImportJob.objects.filter(pk__in=[lost.pk, dead.pk]).update(created_at=old)
    ImportJob.objects.filter(pk=dead.pk).update(status="running", started_at=old, progress=0.4)
    assert jobs.import_jobs_reconcile(queued_grace=timedelta(minutes=10)) == [lost.pk, dead.pk]
    assert sent == [lost.pk, dead.pk] and fresh.pk not in sent
    # The dead run's job runs again from its files, still in the storage; rows it had already
    # written count as already present.
    job = jobs.import_job_run(job_id=dead.pk)
    assert job.status == "succeeded" and job.imported + job.already_present == 2


def test_release_import_job_as_gold_makes_gold_items_not_ground_truth(annotated, tmp_path):  # noqa: F811
    from annotation.models import GoldReference

    campaign, _ = annotated
    job = export_job_run(job_id=ExportJob.objects.create(campaign=campaign, format="tfrecord", with_images=True).pk)
    with job.archive.open("rb") as handle:
        blob = handle.read()
    gold = Campaign.objects.create(name="gold")
    imp = jobs.import_job_create(campaign=gold, kind="release", uploads=[upload("release.zip", blob)], as_gold=True)
    assert imp.options["as_gold"] is True
    imp = jobs.import_job_run(job_id=imp.pk)
    assert imp.status == "succeeded" and imp.imported == 6, (imp.error, imp.problems)
    assert Item.objects.filter(campaign=gold, is_gold=True).count() == 6
    assert GoldReference.objects.filter(item__campaign=gold).count() == 6
    assert not ImportedLabel.objects.filter(item__campaign=gold).exists()
