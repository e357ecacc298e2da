"""Upload and import jobs: the admins' upload page hands files to a Celery worker.

The request checks the upload whole (uploads.upload_check: size, shape, a readable manifest
or prompts file, a sound zip) before anything is kept, so an oversized or malformed upload is refused with a
clear message and leaves neither a file nor a row. An accepted upload is copied into the
default storage (the bucket when RICHHF_STORAGE=s3: web and worker share no disk), the job
row is written, and the worker is woken after commit. The worker copies the files into a
temporary folder, runs the SAME services as the command-line tools (annotation.imports for
`import_items`, importer.import_release for `import_richhf`), records progress and every
rejected row as `FILE:LINE: reason` (`FILE#INDEX: reason` for a TFRecord record), and
deletes the uploaded files.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from annotation.imports import MANIFEST_NAMES, MANIFEST_SUFFIXES, ManifestError, items_import_rows, manifest_read
from annotation.models import Campaign, Split
from modeling.data.tfrecord import scan_records
from richhf_site.faults import BrokerUnavailable, task_publish

from .importer import PromptsError, import_release
from .models import ImportJob
from .uploads import PROMPT_SUFFIXES, UploadedFile, UploadRejected, safe_name, upload_check, zip_members

__all__ = ["UploadRejected", "UploadedFile", "import_job_create", "import_job_run", "import_jobs_reconcile"]

UPLOAD_ROOT = "uploads"

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- create


def _import_job_enqueue(*, job_id: int) -> None:
    from .tasks import run_import_job

    try:
        task_publish(run_import_job, job_id)
    except BrokerUnavailable:
        # The row says queued; the page shows it, and an admin can upload again.
        logger.warning("import job %s stays queued: the broker is unreachable", job_id)
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
            error="The task queue is unreachable; the job waits until a worker picks it up."
        )


def import_job_create(
    *,
    campaign: Campaign,
    kind: str,
    uploads: list[UploadedFile],
    requested_by: Any = None,
    split: str = "",
    as_gold: bool = False,
) -> ImportJob:
    """Checks the upload, stores its files under a fresh folder of the default storage,
    records the job and enqueues it after commit. On any failure the stored files are
    deleted again: a refused upload leaves nothing behind."""
    if split and split not in Split.values:
        raise UploadRejected(f"split must be one of {', '.join(Split.values)}", field="split")
    upload_check(kind=kind, uploads=uploads)
    prefix = f"{UPLOAD_ROOT}/{uuid.uuid4().hex}"
    stored: list[str] = []
    try:
        for upload in uploads:
            upload.handle.seek(0)
            stored.append(default_storage.save(f"{prefix}/{safe_name(upload.name)}", upload.handle))
        with transaction.atomic():
            job = ImportJob.objects.create(
                campaign=campaign,
                kind=kind,
                requested_by=requested_by,
                upload_prefix=prefix,
                files=stored,
                upload_bytes=sum(u.size for u in uploads),
                options={"split": split, "as_gold": as_gold},
            )
            transaction.on_commit(lambda: _import_job_enqueue(job_id=job.pk))
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    return job


# --------------------------------------------------------------------------- reconcile

# The import task's hard time limit (tasks.py): a job "running" for longer lost its worker.
IMPORT_TIME_LIMIT_S = 3 * 3600 + 300
IMPORT_RUNNING_STALE_AFTER = timedelta(seconds=IMPORT_TIME_LIMIT_S + 300)


def import_jobs_reconcile(*, queued_grace: timedelta, now: datetime | None = None) -> list[int]:
    """Enqueues again every import job whose message may have been lost (queued for longer
    than queued_grace), and puts back in the queue the jobs whose worker died mid-run (running
    past the task's time limit: their files are still in the storage, since only a finished
    run deletes them). Re-running is safe: items are found by their content hash, ground
    truth by its item, so rows already imported are counted as already present."""
    from .tasks import run_import_job

    now = now or timezone.now()
    stale = ImportJob.objects.filter(
        status=ImportJob.Status.RUNNING, started_at__lt=now - IMPORT_RUNNING_STALE_AFTER
    ).values_list("id", flat=True)
    for job_id in list(stale):
        ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING).update(
            status=ImportJob.Status.QUEUED, error="The worker running this job stopped; it runs again."
        )
    stranded = ImportJob.objects.filter(status=ImportJob.Status.QUEUED, created_at__lt=now - queued_grace).values_list(
        "id", flat=True
    )
    enqueued: list[int] = []
    for job_id in sorted(stranded):
        task_publish(run_import_job, job_id)  # beat retries on its next tick if the broker is down
        enqueued.append(job_id)
    return enqueued


# --------------------------------------------------------------------------- run


def _fetch(job: ImportJob, folder: Path) -> None:
    """Copies the job's files from the storage into folder, unpacking a zip (checked again:
    the storage is not trusted more than the request was)."""
    for name in job.files:
        target = folder / PurePosixPath(name).name
        with default_storage.open(name, "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if target.suffix.lower() == ".zip":
            unpacked = folder / "unpacked"
            with zipfile.ZipFile(target) as archive:
                for info in zip_members(archive, target.name):
                    destination = unpacked / info.filename
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, destination.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
            target.unlink()


def _progress_writer(job_id: int) -> Callable[[int, int], None]:
    last = {"p": -1.0}

    def progress(done: int, total: int) -> None:
        fraction = min(1.0, done / total) if total else 1.0
        # One row update per 1%: live progress without a write per row.
        if fraction - last["p"] >= 0.01 or done == total:
            last["p"] = fraction
            ImportJob.objects.filter(pk=job_id).update(progress=fraction)

    return progress


def _run_items(job: ImportJob, folder: Path, progress: Callable[[int, int], None]) -> tuple[int, int, list[str]]:
    root = folder / "unpacked" if (folder / "unpacked").is_dir() else folder
    candidates = sorted(
        (p for p in root.rglob("*") if p.name in MANIFEST_NAMES or (root == folder and p.suffix in MANIFEST_SUFFIXES)),
        key=lambda p: (len(p.relative_to(root).parts), p.name not in MANIFEST_NAMES),
    )
    if not candidates:
        raise ManifestError("no manifest in the upload")
    manifest = candidates[0]
    rows = manifest_read(manifest)
    report = items_import_rows(
        campaign=job.campaign,
        rows=rows,
        base=manifest.parent,
        label=str(manifest.relative_to(root)),
        default_split=job.options.get("split") or None,
        progress=progress,
    )
    return report.imported, report.already_present, [_relative(p, root) for p in report.problems]


def _relative(problem: str, root: Path) -> str:
    """Names files as the admin uploaded them, not by the worker's temporary folder."""
    return problem.replace(f"{root}/", "").replace(str(root), "the upload")


def _run_release(job: ImportJob, folder: Path, progress: Callable[[int, int], None]) -> tuple[int, int, list[str]]:
    root = folder / "unpacked" if (folder / "unpacked").is_dir() else folder
    tfrecords = sorted(root.rglob("*.tfrecord"))
    prompts = [p for p in root.rglob("*") if p.suffix.lower() in PROMPT_SUFFIXES]
    total = 0
    for path in tfrecords:
        with path.open("rb") as handle:
            total += sum(1 for _ in scan_records(handle, verify_crc=False))
    done = {"n": 0}

    def step(n: int) -> None:
        done["n"] += n
        progress(done["n"], total)

    report = import_release(
        campaign=job.campaign,
        tfrecords=tfrecords,
        images_dir=root,
        prompts_path=prompts[0],
        progress=step,
        as_gold=bool(job.options.get("as_gold")),
    )
    # Problems name the files as the admin uploaded them, not the worker's temporary folder.
    problems = [_relative(p, root) for p in report.problems]
    return report.imported, report.already_present, problems


def _import_job_fail(job_id: int, error: str) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportJob.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def import_job_run(*, job_id: int) -> ImportJob | None:
    """The worker's side. Claimed with one conditional UPDATE, so a duplicate message does
    nothing; the uploaded files are deleted from the storage when the run ends, whatever
    its outcome."""
    job = ImportJob.objects.select_related("campaign").filter(pk=job_id).first()
    if job is None:
        logger.warning("import job %s no longer exists; nothing to run", job_id)
        return None
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now(), progress=0, error=""
    )
    if not claimed:
        logger.info("import job %s is %s; this message is a duplicate and does nothing", job_id, job.status)
        return job
    folder = Path(tempfile.mkdtemp(prefix="richhf-import-"))
    try:
        _fetch(job, folder)
        run = _run_items if job.kind == ImportJob.Kind.ITEMS else _run_release
        imported, present, problems = run(job, folder, _progress_writer(job.pk))
    except (ManifestError, PromptsError) as exc:  # the upload's fault: said on the page, not a crash
        _import_job_fail(job.pk, str(exc).replace(f"{folder}/", ""))
    except Exception as exc:
        _import_job_fail(job.pk, f"{type(exc).__name__}: {exc}".replace(f"{folder}/", ""))
        raise
    else:
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.SUCCEEDED,
            progress=1.0,
            imported=imported,
            already_present=present,
            problems=problems,
            finished_at=timezone.now(),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for name in job.files:
            default_storage.delete(name)
    job.refresh_from_db()
    return job
