"""Celery tasks of the exports: ids in, one service call each."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import jobs, services


@shared_task(
    name="exports.run_export_job",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3 * 3600,
    time_limit=services.EXPORT_TIME_LIMIT_S,
)
def run_export_job(job_id: int) -> None:
    services.export_job_run(job_id=job_id)


@shared_task(name="exports.reconcile", ignore_result=True, soft_time_limit=60, time_limit=90)
def reconcile_export_jobs(queued_grace_s: int | None = None) -> int:
    """For beat: re-enqueues export and import jobs whose message was lost (see
    export_jobs_reconcile and import_jobs_reconcile)."""
    grace_s = settings.RICHHF_EXPORT_QUEUED_GRACE_S if queued_grace_s is None else queued_grace_s
    grace = timedelta(seconds=grace_s)
    return len(services.export_jobs_reconcile(queued_grace=grace)) + len(jobs.import_jobs_reconcile(queued_grace=grace))


@shared_task(
    name="exports.run_import_job", ignore_result=True, soft_time_limit=3 * 3600, time_limit=jobs.IMPORT_TIME_LIMIT_S
)
def run_import_job(job_id: int) -> None:
    jobs.import_job_run(job_id=job_id)
