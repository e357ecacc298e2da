"""Celery tasks of active learning: ids in, one service call each (queue "training").

retrain is idempotent (a finished version is left alone; a running one with a fresh
heartbeat is left to its worker) and resumes from OUT/last, so acks_late +
reject_on_worker_lost make a crashed run start again where it stopped.
"""

from __future__ import annotations

from celery import shared_task

from .services import predictions, runs, schedule


@shared_task(
    name="learning.retrain",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 300,
)
def retrain(version_id: int) -> None:
    runs.retrain_run(version_id=version_id)


@shared_task(name="learning.predict", acks_late=True, ignore_result=True, soft_time_limit=3600, time_limit=3900)
def predict(version_id: int) -> None:
    predictions.predictions_recompute(version_id=version_id)


@shared_task(name="learning.tick", ignore_result=True, soft_time_limit=120, time_limit=180)
def tick() -> dict[str, int]:
    return schedule.learning_tick()
