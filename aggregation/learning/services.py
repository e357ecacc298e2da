"""Active-learning services: request/run a retraining, activate a version, recompute the
predictions that order the queue, and the two downstream exports.

Locks: "one run per campaign" is the partial unique constraint on ModelVersion (status in
queued/running); retrain_request relies on it instead of a cache lock, so it also holds
across processes and after crashes. retrain_run holds the version's row lock only while it
changes the status, never during training.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from aggregation.models import ItemAggregate
from aggregation.services.aggregates import settings_fingerprint
from annotation.errors import ApplicationError
from annotation.models import Campaign, Item, Split
from annotation.services import item_priorities_set

from .models import IN_FLIGHT, ItemPrediction, LearningSettings, ModelVersion, VersionStatus

logger = logging.getLogger(__name__)

HEARTBEAT_S = 30
STALE_AFTER = timedelta(minutes=5)
MIN_DEV_ITEMS = 2  # PLCC/SRCC need two points


def learning_settings_get(*, campaign: Campaign) -> LearningSettings:
    settings_row, _ = LearningSettings.objects.get_or_create(campaign=campaign)
    return settings_row


@transaction.atomic
def learning_settings_update(*, campaign: Campaign, **fields: Any) -> LearningSettings:
    row = LearningSettings.objects.select_for_update().filter(campaign=campaign).first()
    row = row or LearningSettings(campaign=campaign)
    for name, value in fields.items():
        setattr(row, name, value)
    try:
        row.full_clean()
    except ValidationError as exc:
        raise ApplicationError("; ".join(exc.messages), status_code=400) from exc
    row.save()
    return row


def current_aggregate_count(*, campaign: Campaign) -> int:
    return ItemAggregate.objects.filter(
        item__campaign=campaign, settings_fingerprint=settings_fingerprint(campaign)
    ).count()


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
            transaction.on_commit(lambda: _enqueue_retrain(version.pk))
    except IntegrityError:
        running = ModelVersion.objects.filter(campaign=campaign, status__in=IN_FLIGHT).first()
        if running is None:  # it finished between the insert and this read
            return retrain_request(campaign=campaign, reason=reason)
        return RetrainRequest(running, started=False)
    return RetrainRequest(version, started=True)


def _enqueue_retrain(version_id: int) -> None:
    from . import tasks

    tasks.retrain.delay(version_id)


def _enqueue_predict(version_id: int) -> None:
    from . import tasks

    tasks.predict.delay(version_id)


def work_dir(version: ModelVersion) -> Path:
    return Path(settings.RICHHF_LEARNING_DIR) / "runs" / f"campaign{version.campaign_id}-v{version.pk}"


def _claim(version_id: int) -> ModelVersion | None:
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


def _set(version: ModelVersion, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(version, name, value)
    ModelVersion.objects.filter(pk=version.pk).update(**fields)


class _Heartbeat:
    """Touches heartbeat_at every HEARTBEAT_S from a thread while training runs, so the beat
    tick can tell a live long run from a crashed one."""

    def __init__(self, version_id: int):
        self.version_id = version_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_S):
                ModelVersion.objects.filter(pk=self.version_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def _export_training_data(version: ModelVersion, data: Path) -> dict[str, int]:
    """The campaign's current aggregates (+ the extra campaign's train split) in the release
    layout modeling.train reads. Written once per version: a resumed run reuses it."""
    from aggregation.exports.writers import export_campaign

    marker = data / "counts.json"
    if marker.exists():
        return json.loads(marker.read_text())
    if data.exists():
        shutil.rmtree(data)
    export_campaign(campaign=version.campaign, fmt="tfrecord", out_dir=data, with_images=True)
    extra_name = version.config.get("extra_training_campaign")
    extra = Campaign.objects.filter(name=extra_name).first() if extra_name else None
    counts = _count_splits(data)
    if extra is not None:
        extra_dir = data.parent / "extra"
        shutil.rmtree(extra_dir, ignore_errors=True)
        export_campaign(campaign=extra, fmt="tfrecord", out_dir=extra_dir, with_images=True)
        # TFRecord files are plain sequences of records: appending keeps both readable.
        if (extra_dir / "train.tfrecord").exists():
            with open(data / "train.tfrecord", "ab") as out, open(extra_dir / "train.tfrecord", "rb") as src:
                shutil.copyfileobj(src, out)
            with open(data / "prompts.jsonl", "a", encoding="utf-8") as out:
                out.write((extra_dir / "prompts.jsonl").read_text(encoding="utf-8"))
            for image in (extra_dir / "images").iterdir():
                if not (data / "images" / image.name).exists():
                    shutil.copy2(image, data / "images" / image.name)
        counts["extra_train"] = _count_splits(extra_dir).get("train", 0)
        shutil.rmtree(extra_dir, ignore_errors=True)
    marker.write_text(json.dumps(counts))
    return counts


def _count_splits(data: Path) -> dict[str, int]:
    from modeling.data.release import read_release_tfrecord

    return {
        split: sum(1 for _ in read_release_tfrecord(data / f"{split}.tfrecord"))
        for split in ("train", "dev", "test")
        if (data / f"{split}.tfrecord").exists()
    }


def _upload_checkpoint(version: ModelVersion, directory: Path) -> tuple[str, list[str]]:
    prefix = f"learning/checkpoints/campaign{version.campaign_id}/v{version.pk}"
    names = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        target = f"{prefix}/{relative}"
        if default_storage.exists(target):
            default_storage.delete(target)
        with path.open("rb") as handle:
            default_storage.save(target, handle)
        names.append(relative)
    return prefix, names


def checkpoint_local(version: ModelVersion) -> Path:
    """A local copy of the version's checkpoint (downloaded from storage once)."""
    local = Path(settings.RICHHF_LEARNING_DIR) / "cache" / f"v{version.pk}"
    files = version.config.get("checkpoint_files") or []
    if not files:
        raise ApplicationError(f"model version {version.pk} has no stored checkpoint")
    if all((local / name).exists() for name in files):
        return local
    for name in files:
        target = local / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(f"{version.checkpoint_prefix}/{name}", "rb") as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
    return local


def _evaluate_on(version: ModelVersion, data: Path) -> float:
    """Re-evaluates a stored version on this run's dev split (same metric as training)."""
    from modeling.data.dataset import load_split
    from modeling.evaluate import evaluate_predictions, predict_samples
    from modeling.inference import RAHFPredictor

    predictor = RAHFPredictor.from_checkpoint(checkpoint_local(version), device="cpu")
    dev = load_split(data, "dev")
    predictions = predict_samples(predictor.model, predictor.processor, dev, progress=False)
    return evaluate_predictions(predictions, dev).combined()


def retrain_run(*, version_id: int) -> ModelVersion | None:
    """The task body: export, train (resuming OUT/last after a crash), register metrics,
    apply the activation rule, and when activated recompute the predictions. Idempotent: a
    finished version is left alone."""
    version = _claim(version_id)
    if version is None:
        return None
    started = time.perf_counter()
    try:
        with _Heartbeat(version.pk):
            _train_and_register(version)
    except Exception as exc:  # a bug or bad data: record it and free the campaign's lock
        logger.exception("retraining of version %s failed", version.pk)
        _set(version, status=VersionStatus.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now(),
             duration_s=(version.duration_s or 0) + time.perf_counter() - started)  # fmt: skip
        return version
    _set(version, duration_s=(version.duration_s or 0) + time.perf_counter() - started)
    if version.is_active:
        try:
            predictions_recompute(version_id=version.pk)
        except Exception as exc:  # the version stays valid; the next tick or activation retries
            logger.exception("predictions of version %s failed", version.pk)
            _set(version, error=f"predictions: {type(exc).__name__}: {exc}")
    _set(version, progress=1.0, stage="done")
    return version


def _train_and_register(version: ModelVersion) -> None:
    from modeling.train import TRAIN_STATE, build_parser, train

    root = work_dir(version)
    data, run = root / "data", root / "run"
    _set(version, stage="exporting training data", progress=0.05)
    counts = _export_training_data(version, data)
    aggregates_seen = current_aggregate_count(campaign=version.campaign)
    _set(version, data_counts=counts, aggregates_seen=aggregates_seen)
    if counts.get("train", 0) + counts.get("extra_train", 0) == 0:
        raise ValueError("no training items with a current aggregate yet")
    if counts.get("dev", 0) < MIN_DEV_ITEMS:
        raise ValueError(f"the dev split needs at least {MIN_DEV_ITEMS} items with a current aggregate")
    cfg = version.config
    argv = [
        "--data", str(data), "--out", str(run), "--config", cfg["config"], "--variant", cfg["variant"],
        "--max-steps", str(cfg["max_steps"]), "--max-minutes", str(cfg["max_minutes"]),
        "--batch-size", str(cfg["batch_size"]), "--seed", str(version.pk), "--no-progress", "--device", "cpu",
        "--save-every", "50",
    ]  # fmt: skip
    if (run / "last" / TRAIN_STATE).exists():
        argv.append("--resume")
    _set(version, stage="training", progress=0.1)
    summary = train(build_parser().parse_args(argv))
    best = run / "best"
    record = json.loads((best / "metrics.json").read_text())
    prefix, files = _upload_checkpoint(version, best)
    config = {**cfg, "checkpoint_files": files, "train_summary": summary}
    _set(
        version,
        stage="comparing with the active version",
        progress=0.8,
        config=config,
        checkpoint_prefix=prefix,
        dev_metrics=record.get("dev"),
        combined_metric=float(record["dev_combined"]),
    )
    with transaction.atomic():
        active = ModelVersion.objects.select_for_update().filter(campaign=version.campaign, is_active=True).first()
        compared = None
        if active is not None:
            compared = {"version": active.pk, "combined": _evaluate_on(active, data)}
        better = active is None or version.combined_metric > compared["combined"]
        _set(version, compared_with=compared, status=VersionStatus.DONE, finished_at=timezone.now())
        if better:
            _activate(version, by="rule")


def _activate(version: ModelVersion, *, by: str) -> None:
    ModelVersion.objects.filter(campaign_id=version.campaign_id, is_active=True).exclude(pk=version.pk).update(
        is_active=False
    )
    _set(version, is_active=True, activated_by=by)


@transaction.atomic
def version_activate(*, version: ModelVersion, user) -> ModelVersion:
    """An admin's choice: activates any finished version, better or not, and recomputes the
    predictions after commit."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != VersionStatus.DONE:
        raise ApplicationError("Only a finished version can be activated.", status_code=409)
    _activate(version, by=user.get_username())
    transaction.on_commit(lambda: _enqueue_predict(version.pk))
    return version


def _heatmap_png(heatmap: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.asarray(heatmap) * 255 + 0.5, 0, 255).astype(np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def items_needing_raters(*, campaign: Campaign):
    return Item.objects.filter(campaign=campaign, completed_at__isnull=True).order_by("id")


def predictions_recompute(*, version_id: int, batch_size: int = 16) -> int:
    """Predicts every item that still needs raters with the (active) version, upserts one
    ItemPrediction per item, and rewrites the priority of the untouched train items from
    the queue order: priority = 1 - rank / n (in (0, 1]), highest leased first. Dev and test
    items keep their priority (leads decide how fast held-out labels come in). Items already
    in progress are leased first by the assignment engine whatever their priority, so the
    k-raters rules are untouched. Recomputed from scratch and seeded by the version id: a
    second run writes the same values."""
    from modeling.inference import RAHFPredictor

    from .acquisition import acquire, queue_order

    version = ModelVersion.objects.select_related("campaign").get(pk=version_id)
    if not version.is_active:
        return 0
    strategy = version.config.get("strategy", "uncertainty")
    random_share = float(version.config.get("random_share", 0.0))
    items = list(items_needing_raters(campaign=version.campaign))
    _set(version, stage=f"predicting {len(items)} items")
    predictor = RAHFPredictor.from_checkpoint(checkpoint_local(version), device="cpu")
    acquired = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = []
        for item in chunk:
            with item.image.open("rb") as handle:
                images.append(Image.open(io.BytesIO(handle.read())).convert("RGB"))
        acquired += acquire(
            predictor, images, [i.prompt for i in chunk], strategy=strategy, batch_size=batch_size,
            seed=version.pk * 1000 + start,
        )  # fmt: skip
    train_positions = [i for i, item in enumerate(items) if item.split == Split.TRAIN]
    order = queue_order([acquired[i].value for i in train_positions], random_share=random_share, seed=version.pk)
    rank: dict[int, tuple[int, bool]] = {train_positions[j]: (r, explored) for r, (j, explored) in enumerate(order)}
    n_train = max(len(train_positions), 1)
    priorities: dict[int, float] = {}
    for position, (item, result) in enumerate(zip(items, acquired, strict=True)):
        r, explored = rank.get(position, (0, False))
        _prediction_upsert(version=version, item=item, result=result, strategy=strategy, rank=r, explored=explored)
        if position in rank:
            priorities[item.pk] = 1.0 - r / n_train
    item_priorities_set(priorities=priorities)
    # Predictions of items that got their k answers since are no longer needed.
    ItemPrediction.objects.filter(item__campaign=version.campaign, item__completed_at__isnull=False).delete()
    return len(items)


def _prediction_upsert(*, version: ModelVersion, item: Item, result, strategy: str, rank: int, explored: bool) -> None:
    prediction = result.prediction
    row = ItemPrediction.objects.filter(item=item).first() or ItemPrediction(item=item)
    for field in ("implausibility_map", "misalignment_map"):
        old = getattr(row, field)
        if old:
            old.delete(save=False)
    row.version = version
    row.scores = prediction.scores
    row.misaligned_indices = prediction.misaligned_indices
    row.tagged_prompt = prediction.tagged_prompt
    row.strategy = strategy
    row.acquisition = result.value
    row.queue_rank = rank
    row.explored = explored
    for field, task in (("implausibility_map", "implausibility"), ("misalignment_map", "misalignment")):
        getattr(row, field).save(
            f"item{item.pk}-v{version.pk}-{task}.png", ContentFile(_heatmap_png(prediction.heatmaps[task])), save=False
        )
    row.save()


# --------------------------------------------------------------------------- scheduling


def campaigns_due(*, now=None) -> list[tuple[Campaign, str]]:
    """Enabled campaigns whose schedule or new-aggregate threshold says: retrain now."""
    now = now or timezone.now()
    due = []
    for learning in LearningSettings.objects.filter(enabled=True).select_related("campaign"):
        campaign = learning.campaign
        last = ModelVersion.objects.filter(campaign=campaign).exclude(status=VersionStatus.FAILED).first()
        if learning.schedule_hours and (
            last is None or now - last.created_at >= timedelta(hours=learning.schedule_hours)
        ):
            due.append((campaign, "schedule"))
        elif learning.min_new_aggregates:
            new = current_aggregate_count(campaign=campaign) - (last.aggregates_seen if last else 0)
            if new >= learning.min_new_aggregates:
                due.append((campaign, "new aggregates"))
    return due


def learning_tick(*, now=None) -> dict[str, int]:
    """Beat job: start due runs; re-enqueue runs whose worker went silent (crash), which
    then resume from their last checkpoint."""
    now = now or timezone.now()
    started = sum(retrain_request(campaign=c, reason=why).started for c, why in campaigns_due(now=now))
    # A silent running version (worker crashed) or a queued one whose message got lost. A
    # duplicate message is harmless: _claim skips finished runs and runs with a fresh heartbeat.
    stale = ModelVersion.objects.filter(
        Q(status=VersionStatus.RUNNING, heartbeat_at__lt=now - STALE_AFTER)
        | Q(status=VersionStatus.QUEUED, created_at__lt=now - 2 * STALE_AFTER)
    )
    stale_ids = list(stale.values_list("pk", flat=True))
    for pk in stale_ids:
        _enqueue_retrain(pk)
    return {"started": started, "resumed": len(stale_ids)}


# --------------------------------------------------------------------------- exports


def inpainting_masks_export(
    *, campaign: Campaign, out_dir: Path, item_ids: list[int] | None = None, threshold: float = 0.3, dilation: int = 8
) -> list[Path]:
    """One PNG mask per item (white = inpaint) at the image's size, from the active
    version's predicted implausibility heatmap (paper section 5)."""
    from modeling.uses import inpainting_mask

    rows = ItemPrediction.objects.filter(item__campaign=campaign, version__is_active=True).select_related("item")
    if item_ids:
        rows = rows.filter(item_id__in=item_ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row in rows.order_by("item_id"):
        with row.implausibility_map.open("rb") as handle:
            heat = np.asarray(Image.open(io.BytesIO(handle.read())), dtype=np.float32) / 255.0
        mask = inpainting_mask(
            heat, threshold=threshold, dilation=dilation, output_size=(row.item.width, row.item.height)
        )
        path = out_dir / f"item{row.item_id}-mask.png"
        Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(path)
        written.append(path)
    return written


def finetune_selection_export(
    *, campaign: Campaign, thresholds: dict[str, float], best_per_prompt: int | None = 1
) -> list[dict[str, Any]]:
    """The paper's data selection over the active version's predicted scores."""
    from modeling.uses import Candidate, select_finetuning_data

    rows = ItemPrediction.objects.filter(item__campaign=campaign, version__is_active=True).select_related("item")
    candidates = [Candidate(str(r.item_id), r.item.prompt, r.scores) for r in rows.order_by("item_id")]
    chosen = select_finetuning_data(candidates, thresholds=thresholds, best_per_prompt=best_per_prompt)
    return [{"item_id": int(c.image_id), "prompt": c.prompt, "scores": c.scores} for c in chosen]
