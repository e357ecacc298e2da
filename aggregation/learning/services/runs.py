"""A retraining run: request it (one per campaign in flight), claim it, and run it with a
heartbeat: export, train, compare with the active version, and recompute the predictions
when the new version wins."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Campaign
from richhf_site.faults import BrokerUnavailable, task_publish

from ..models import ModelVersion, VersionStatus
from ..selectors import current_aggregate_count, version_in_flight
from .evaluation import version_compare_and_activate
from .predictions import predictions_recompute
from .run_artifacts import checkpoint_upload, training_data_export, work_dir, work_dir_remove
from .settings import learning_settings_get
from .versions import VersionHeartbeat, version_fields_record

if TYPE_CHECKING:  # modeling.train imports torch: loaded by the worker only
    from modeling.train import TrainConfig

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=5)
MIN_DEV_ITEMS = 2  # PLCC/SRCC need two points
SAVE_EVERY_STEPS = 50  # OUT/last for a resumed run after a crash


@dataclass
class RetrainRequest:
    version: ModelVersion
    started: bool


def retrain_request(*, campaign: Campaign, reason: str = "manual") -> RetrainRequest:
    """Creates a queued version and enqueues its run after commit, unless a run is already
    queued or running for the campaign: then that one is returned and nothing starts."""
    learning = learning_settings_get(campaign=campaign)
    config = {
        "config": learning.config_name,
        "variant": learning.variant,
        "max_steps": learning.max_steps,
        "max_minutes": learning.max_minutes,
        "batch_size": learning.batch_size,
        "strategy": learning.strategy,
        "random_share": learning.random_share,
        "extra_training_campaign": learning.extra_training_campaign.name if learning.extra_training_campaign else None,
    }
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(campaign=campaign, reason=reason, config=config)
            transaction.on_commit(lambda: retrain_enqueue(version_id=version.pk))
    except IntegrityError:
        running = version_in_flight(campaign=campaign)
        if running is None:  # it finished between the insert and this read
            return retrain_request(campaign=campaign, reason=reason)
        return RetrainRequest(running, started=False)
    return RetrainRequest(version, started=True)


def retrain_enqueue(*, version_id: int) -> None:
    """After the commit that queued the version. With the broker down the version stays queued
    and learning.tick enqueues it again (after 2 x STALE_AFTER): the request still succeeds."""
    from .. import tasks

    try:
        task_publish(tasks.retrain, version_id)
    except BrokerUnavailable:
        logger.warning("retrain of version %s not enqueued; learning.tick will retry", version_id)


def retrain_claim(*, version_id: int) -> ModelVersion | None:
    """Marks the version running (attempts + 1), or returns None when there is nothing to do:
    already finished, or running with a fresh heartbeat (another worker has it)."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().select_related("campaign").filter(pk=version_id).first()
        if version is None or version.status in (VersionStatus.DONE, VersionStatus.FAILED):
            return None
        now = timezone.now()
        if (
            version.status == VersionStatus.RUNNING
            and version.heartbeat_at
            and now - version.heartbeat_at < STALE_AFTER
        ):
            return None
        version.status = VersionStatus.RUNNING
        version.attempts += 1
        version.started_at = version.started_at or now
        version.heartbeat_at = now
        version.save(update_fields=["status", "attempts", "started_at", "heartbeat_at"])
        return version


def retrain_run(*, version_id: int) -> ModelVersion | None:
    """The task body: export, train (resuming OUT/last after a crash), register metrics,
    apply the activation rule, and when activated recompute the predictions. Idempotent: a
    finished version is left alone."""
    version = retrain_claim(version_id=version_id)
    if version is None:
        return None
    started = time.perf_counter()
    try:
        with VersionHeartbeat(version.pk):
            _train_and_register(version)
    except Exception as exc:  # a bug or bad data: record it and free the campaign's lock
        logger.exception("retraining of version %s failed", version.pk)
        version_fields_record(
            version=version,
            status=VersionStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
            duration_s=(version.duration_s or 0) + time.perf_counter() - started,
        )
        return version
    version_fields_record(version=version, duration_s=(version.duration_s or 0) + time.perf_counter() - started)
    if version.is_active:
        try:
            predictions_recompute(version_id=version.pk)
        except Exception as exc:  # the version stays valid; the next tick or activation retries
            logger.exception("predictions of version %s failed", version.pk)
            version_fields_record(version=version, error=f"predictions: {type(exc).__name__}: {exc}")
    version_fields_record(version=version, progress=1.0, stage="done")
    return version


def _train_config(version: ModelVersion, *, data: Path, run: Path, resume: bool) -> TrainConfig:
    """The version's recorded settings as modeling.train's config: on CPU, seeded by the
    version id, saving OUT/last often enough that a crash loses little."""
    from modeling.train import TrainConfig

    cfg = version.config
    return TrainConfig(
        data=data,
        out=run,
        config_name=cfg["config"],
        variant=cfg["variant"],
        max_steps=int(cfg["max_steps"]),
        max_minutes=float(cfg["max_minutes"]),
        batch_size=int(cfg["batch_size"]),
        seed=version.pk,
        progress=False,
        device="cpu",
        save_every=SAVE_EVERY_STEPS,
        resume=resume,
    )


def _train_and_register(version: ModelVersion) -> None:
    from modeling.train import TRAIN_STATE, train

    root = work_dir(version)
    data, run = root / "data", root / "run"
    version_fields_record(version=version, stage="exporting training data", progress=0.05)
    counts = training_data_export(version=version, data=data)
    aggregates_seen = current_aggregate_count(campaign=version.campaign)
    version_fields_record(version=version, data_counts=counts, aggregates_seen=aggregates_seen)
    if counts.get("train", 0) + counts.get("extra_train", 0) == 0:
        raise ValueError("no training items with a current aggregate yet")
    if counts.get("dev", 0) < MIN_DEV_ITEMS:
        raise ValueError(f"the dev split needs at least {MIN_DEV_ITEMS} items with a current aggregate")
    resume = (run / "last" / TRAIN_STATE).exists()
    version_fields_record(version=version, stage="training", progress=0.1)
    summary = train(_train_config(version, data=data, run=run, resume=resume))
    best = run / "best"
    record = json.loads((best / "metrics.json").read_text())
    prefix, files = checkpoint_upload(version=version, directory=best)
    version_fields_record(
        version=version,
        stage="comparing with the active version",
        progress=0.8,
        config={**version.config, "checkpoint_files": files, "train_summary": summary},
        checkpoint_prefix=prefix,
        dev_metrics=record.get("dev"),
        combined_metric=float(record["dev_combined"]),
    )
    version_compare_and_activate(version=version, data=data)
    work_dir_remove(version)
