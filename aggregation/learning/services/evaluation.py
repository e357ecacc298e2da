"""Comparing a new version with the active one, the activation rule, and an admin's
activation.

The comparison evaluates the active version on the new run's dev data, which takes as long
as a prediction pass, so it runs outside any transaction. Only then is the campaign's
activation lock (its LearningSettings row) taken, briefly, to check that the version that
was evaluated is still the active one and to record the result. When an admin activated
another version meanwhile, the new version is compared with the admin's choice instead:
that one is evaluated (again outside the lock), since a version is activated by the rule
only when it beats the version it would replace. After COMPARE_ATTEMPTS changes in a row
the version is recorded as done and left inactive: someone is choosing by hand, and can
activate it too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from aggregation.webhooks.services import model_activated_emit
from richhf_site.errors import ApplicationError
from richhf_site.faults import BrokerUnavailable, task_publish

from ..models import LearningSettings, ModelVersion, VersionStatus
from ..selectors import active_version, version_checkpoint_local
from .versions import version_fields_record

COMPARE_ATTEMPTS = 3

logger = logging.getLogger(__name__)


def version_evaluate_on(*, version: ModelVersion, data: Path) -> float:
    """Re-evaluates a stored version on a run's dev split (the metric training selects by)."""
    from modeling.data.dataset import load_split
    from modeling.evaluate import evaluate_predictions, predict_samples
    from modeling.inference import RAHFPredictor

    predictor = RAHFPredictor.from_checkpoint(version_checkpoint_local(version=version), device="cpu")
    dev = load_split(data, "dev")
    predictions = predict_samples(predictor.model, predictor.processor, dev, progress=False)
    return evaluate_predictions(predictions, dev).combined()


def version_compare_and_activate(*, version: ModelVersion, data: Path) -> bool:
    """Marks a trained version done and activates it when it beats the active version
    re-evaluated on the same dev data (or when there is none); returns whether it did.
    Precondition: no transaction is open (the evaluation must hold no lock)."""
    against = active_version(campaign=version.campaign)
    compared: dict[str, Any] | None = None
    for _ in range(COMPARE_ATTEMPTS):
        compared = None
        if against is not None:
            compared = {"version": against.pk, "combined": version_evaluate_on(version=against, data=data)}
        with transaction.atomic():
            _activation_lock(campaign_id=version.campaign_id)
            current = active_version(campaign=version.campaign)
            if _pk(current) == _pk(against):
                better = compared is None or version.combined_metric > compared["combined"]
                _record_done(version, compared)
                if better:
                    _activate(version, by="rule")
                return better
        against = current
    with transaction.atomic():
        _activation_lock(campaign_id=version.campaign_id)
        _record_done(version, compared)
    return False


@transaction.atomic
def version_activate(*, version: ModelVersion, user: AbstractBaseUser) -> ModelVersion:
    """An admin's choice: activates any finished version, better or not, and recomputes the
    predictions after commit."""
    _activation_lock(campaign_id=version.campaign_id)
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status != VersionStatus.DONE:
        raise ApplicationError("Only a finished version can be activated.", status_code=409)
    _activate(version, by=user.get_username())
    transaction.on_commit(lambda: _enqueue_predict(version.pk))
    return version


def _activation_lock(*, campaign_id: int) -> None:
    """Serialises activations of one campaign's versions (rule and admin alike), so the
    check "the active version is still the one compared with" holds until commit, also
    when there is no active version to lock. Lock order: this row, then version rows."""
    LearningSettings.objects.select_for_update().get_or_create(campaign_id=campaign_id)


def _pk(version: ModelVersion | None) -> int | None:
    return None if version is None else version.pk


def _record_done(version: ModelVersion, compared: dict[str, Any] | None) -> None:
    version_fields_record(
        version=version, compared_with=compared, status=VersionStatus.DONE, finished_at=timezone.now()
    )


def _activate(version: ModelVersion, *, by: str) -> None:
    """Precondition: the campaign's activation lock is held."""
    ModelVersion.objects.filter(campaign_id=version.campaign_id, is_active=True).exclude(pk=version.pk).update(
        is_active=False
    )
    version_fields_record(version=version, is_active=True, activated_by=by)
    model_activated_emit(version=version)  # sent after this transaction commits, never raises


def _enqueue_predict(version_id: int) -> None:
    from .. import tasks

    try:
        task_publish(tasks.predict, version_id)
    except BrokerUnavailable:  # the activation stands; the next retrain or tick predicts again
        logger.warning("predictions of version %s not enqueued: broker unreachable", version_id)
