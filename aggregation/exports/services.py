"""Export jobs run by Celery: a status row with progress, an archive and its checksum.

The row is the source of truth, the broker message only a wake-up call: a job whose message
was lost (broker down when it was requested, a message dropped with a dead worker) is found
by export_jobs_reconcile on beat and enqueued again. Running a job is claimed with one
conditional UPDATE, so duplicate messages cost nothing and a finished export is never redone.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from aggregation.webhooks.services import export_finished_emit
from annotation.models import Campaign
from richhf_site.errors import ApplicationError
from richhf_site.faults import BrokerUnavailable, task_publish

from .models import ExportJob
from .records import SPLIT_ORDER
from .writers import FORMATS, export_campaign, sha256_of

logger = logging.getLogger(__name__)

# The export task's hard time limit (tasks.py): past it no run of a job can still be alive, so
# a job "running" for longer lost its worker and may be claimed again. This is the rule where
# the database has no advisory locks (see _export_run_lock); PostgreSQL knows at once.
EXPORT_TIME_LIMIT_S = 3 * 3600 + 300
RUNNING_STALE_AFTER = timedelta(seconds=EXPORT_TIME_LIMIT_S + 300)
# A queued job younger than this is left to its own message (a worker busy with another export
# may take a while to reach it); an older one is enqueued again, which is harmless if the first
# message does arrive: the second run finds the job claimed or finished and does nothing.
QUEUED_GRACE = timedelta(minutes=10)


def _export_job_enqueue(*, job_id: int) -> None:
    """After commit: the job is recorded, so a broker that cannot take the message is logged
    and left to export_jobs_reconcile; the admin still gets the queued job."""
    from .tasks import run_export_job

    try:
        task_publish(run_export_job, job_id)
    except BrokerUnavailable:
        logger.warning("export job %s stays queued until the broker is back (reconciler re-enqueues it)", job_id)


@transaction.atomic
def export_job_create(
    *,
    campaign: Campaign,
    fmt: str,
    requested_by=None,
    include_image_bytes: bool = False,
    with_images: bool = False,
    split: str = "",
) -> ExportJob:
    """Records the request and enqueues the export after commit (or leaves it to the reconciler
    when the broker is unreachable). The options are the command's: include_image_bytes
    (Parquet), with_images (TFRecord: images and prompts.jsonl ride along), split."""
    if fmt not in FORMATS:
        raise ApplicationError(f"format must be one of {', '.join(FORMATS)}", field="format")
    if split and split not in SPLIT_ORDER:
        raise ApplicationError(f"split must be one of {', '.join(SPLIT_ORDER)}", field="split")
    if include_image_bytes and fmt != "parquet":
        raise ApplicationError("image bytes can only be embedded in a Parquet export", field="include_image_bytes")
    if with_images and fmt != "tfrecord":
        raise ApplicationError(
            "images and prompts ride along with a TFRecord export only (Parquet can embed image bytes)",
            field="with_images",
        )
    job = ExportJob.objects.create(
        campaign=campaign,
        format=fmt,
        requested_by=requested_by,
        include_image_bytes=include_image_bytes,
        with_images=with_images,
        split=split,
    )
    transaction.on_commit(lambda: _export_job_enqueue(job_id=job.pk))
    return job


# Namespace of the session-level advisory locks that mark a live run (first key of the
# two-key form; the job id is the second).
_RUN_LOCK_NAMESPACE = 0x52480001


@contextlib.contextmanager
def _export_run_lock(job_id: int) -> Iterator[bool]:
    """Yields whether this process may run the job: no live run holds it.

    On PostgreSQL a run holds a session-level advisory lock for its whole length, which the
    server drops with the connection, so a run whose worker died (SIGKILL, out of memory, a
    pool child killed at its time limit) holds nothing and its job can be taken at once.
    Other databases (the demo's SQLite) have no such lock; there only the time limit says a
    run is dead (RUNNING_STALE_AFTER).
    """
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_RUN_LOCK_NAMESPACE, job_id])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            # A dropped connection has released it already.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_RUN_LOCK_NAMESPACE, job_id])


def _run_is_alive(job_id: int) -> bool:
    if connection.vendor != "postgresql":
        return True  # nothing to ask: the time limit decides (RUNNING_STALE_AFTER)
    with _export_run_lock(job_id) as free:
        return not free


def _claimable(now: datetime) -> Q:
    """Jobs a run may take, once it holds the run lock: never started, failed (a rerun starts
    from nothing), or running with no live run behind it. On PostgreSQL the lock proves the
    last (nobody else holds it); elsewhere only the time limit does."""
    dead_run = Q(status=ExportJob.Status.RUNNING)
    if connection.vendor != "postgresql":
        dead_run &= Q(started_at__lt=now - RUNNING_STALE_AFTER)
    return Q(status__in=[ExportJob.Status.QUEUED, ExportJob.Status.FAILED]) | dead_run


def export_jobs_reconcile(*, queued_grace: timedelta = QUEUED_GRACE, now: datetime | None = None) -> list[int]:
    """Enqueues every export job whose message may have been lost; returns their ids.

    Queued jobs older than queued_grace, and running jobs whose run is dead (no run lock held
    on PostgreSQL; past the task's time limit elsewhere). Succeeded and failed jobs are left
    alone (a failure is reported, not retried forever). Running it twice only sends duplicate
    messages, which the claim in export_job_run drops.
    """
    from .tasks import run_export_job

    now = now or timezone.now()
    queued = ExportJob.objects.filter(status=ExportJob.Status.QUEUED, created_at__lt=now - queued_grace)
    running = ExportJob.objects.filter(status=ExportJob.Status.RUNNING)
    stale = running.filter(started_at__lt=now - RUNNING_STALE_AFTER).values_list("id", flat=True)
    stranded = set(queued.values_list("id", flat=True)) | set(stale)
    stranded |= {job_id for job_id in running.values_list("id", flat=True) if not _run_is_alive(job_id)}
    enqueued: list[int] = []
    for job_id in sorted(stranded):
        # Beat has no client to answer: BrokerUnavailable propagates and the next tick retries.
        task_publish(run_export_job, job_id)
        enqueued.append(job_id)
    return enqueued


def export_job_run(*, job_id: int) -> ExportJob | None:
    """Writes the export to a temporary folder, zips it (stored, the files are compressed
    already) into the storage, and records the checksum. Safe to rerun: a job that already
    succeeded, or that a live run holds, is left alone; a failed or interrupted one starts
    again from nothing. Returns None when the job no longer exists."""
    with _export_run_lock(job_id) as free:
        job = ExportJob.objects.select_related("campaign").filter(pk=job_id).first()
        if job is None:
            logger.warning("export job %s no longer exists; nothing to run", job_id)
            return None
        if not free:
            logger.info("export job %s is being run by a live worker; this message does nothing", job_id)
            return job
        now = timezone.now()
        # The claim: one conditional UPDATE, so a finished job is never redone.
        claimed = (
            ExportJob.objects.filter(pk=job_id)
            .filter(_claimable(now))
            .update(status=ExportJob.Status.RUNNING, started_at=now, progress=0, error="", finished_at=None)
        )
        if not claimed:
            logger.info("export job %s is %s; this message is a duplicate and does nothing", job_id, job.status)
            return job
        return _export_job_execute(job)


def _export_job_execute(job: ExportJob) -> ExportJob:
    """The run itself, under the run lock and the claim."""
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
            with_images=job.with_images,
            split=job.split or None,
        )
        archive = work / f"{job.campaign.name}-{job.format}-{job.pk}.zip"
        out = work / "out"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
            # Every file, images/ included, under its path in the export folder.
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                zf.write(path, arcname=path.relative_to(out).as_posix())
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
