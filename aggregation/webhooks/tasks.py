from __future__ import annotations

from celery import Task, shared_task

from . import services


@shared_task(
    name="webhooks.deliver",
    bind=True,
    # Idempotent (the delivery row is claimed and a finished one is skipped), so a message
    # is acknowledged only once the attempt is recorded: a killed worker's is redelivered.
    acks_late=True,
    ignore_result=True,
    # The service bounds the attempts (RICHHF_WEBHOOKS_MAX_ATTEMPTS, counted in the row).
    max_retries=None,
    soft_time_limit=60,
    time_limit=90,
)
def deliver(self: Task[[int], None], delivery_id: int) -> None:
    outcome = services.delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in_s is not None:
        # If this publish fails (broker down) the row stays pending with its next_attempt_at,
        # and the sweeper enqueues it once it is overdue.
        raise self.retry(countdown=outcome.retry_in_s)


@shared_task(name="webhooks.enqueue_due", ignore_result=True)
def enqueue_due() -> None:
    services.deliveries_enqueue_due()
