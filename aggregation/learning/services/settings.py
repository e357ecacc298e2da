"""A campaign's learning settings (off by default)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.models import Campaign
from richhf_site.errors import ApplicationError

from ..models import LearningSettings


def learning_settings_get(*, campaign: Campaign) -> LearningSettings:
    """The campaign's settings row, created with the defaults on first use."""
    settings_row, _ = LearningSettings.objects.get_or_create(campaign=campaign)
    return settings_row


@transaction.atomic
def learning_settings_update(*, campaign: Campaign, **fields: Any) -> LearningSettings:
    """Validates with the model's checks (400 on a bad value) and saves under the row's lock."""
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
