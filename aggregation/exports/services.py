"""Export jobs run by Celery: a status row with progress, an archive and its checksum."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from aggregation.webhooks.services import export_finished_emit
from annotation.models import Campaign
from richhf_site.errors import ApplicationError

from .models import ExportJob
from .writers import FORMATS, export_campaign, sha256_of


@transaction.atomic
def export_job_create(
    *, campaign: Campaign, fmt: str, requested_by=None, include_image_bytes: bool = False
) -> ExportJob:
    """Records the request and enqueues the export after commit."""
    if fmt not in FORMATS:
        raise ApplicationError(f"format must be one of {', '.join(FORMATS)}", field="format")
    job = ExportJob.objects.create(
        campaign=campaign, format=fmt, requested_by=requested_by, include_image_bytes=include_image_bytes
    )
    from .tasks import run_export_job

    transaction.on_commit(lambda: run_export_job.delay(job.pk))
    return job


def export_job_run(*, job_id: int) -> ExportJob:
    """Writes the export to a temporary folder, zips it (stored, the files are compressed
    already) into the storage, and records the checksum. Safe to rerun: a job that already
    succeeded is left alone, a failed or interrupted one starts again from nothing."""
    job = ExportJob.objects.select_related("campaign").get(pk=job_id)
    if job.status == ExportJob.Status.SUCCEEDED:
        return job
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now(), progress=0, error=""
    )
    last = {"p": -1.0}

    def progress(done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        # A row update per 1% keeps the progress live without a write per item.
        if fraction - last["p"] >= 0.01 or done == total:
            last["p"] = fraction
            ExportJob.objects.filter(pk=job.pk).update(progress=min(1.0, fraction))

    work = Path(tempfile.mkdtemp(prefix="richhf-export-"))
    try:
        result = export_campaign(
            campaign=job.campaign,
            fmt=job.format,
            out_dir=work / "out",
            progress=progress,
            include_image_bytes=job.include_image_bytes,
        )
        archive = work / f"{job.campaign.name}-{job.format}-{job.pk}.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
            for path in sorted((work / "out").iterdir()):
                zf.write(path, arcname=path.name)
        with archive.open("rb") as handle:
            job.archive.save(archive.name, File(handle), save=False)
        job.sha256 = sha256_of(archive)
        job.items_exported = result.items
        job.left_out = result.left_out
        job.status = ExportJob.Status.SUCCEEDED
        job.progress = 1.0
        job.finished_at = timezone.now()
        job.save(update_fields=["archive", "sha256", "items_exported", "left_out", "status", "progress", "finished_at"])
        export_finished_emit(job=job)  # never raises: a webhook cannot fail the finished export
        return job
    except Exception as exc:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
