from celery import shared_task

from . import services


@shared_task(name="annotation.expire_leases", ignore_result=True)
def expire_leases() -> int:
    """Beat runs this every minute; queries ignore expired leases anyway, this only tidies."""
    return services.leases_expire()
