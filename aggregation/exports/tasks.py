from celery import shared_task

from . import services


@shared_task(
    name="exports.run_export_job",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 300,
)
def run_export_job(job_id: int) -> None:
    services.export_job_run(job_id=job_id)
