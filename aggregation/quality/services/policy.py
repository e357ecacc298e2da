"""The campaign's quality policy: stored on first change, defaults until then."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from annotation.models import Campaign

from ..models import QualityPolicy


@transaction.atomic
def policy_update(*, campaign: Campaign, changes: Mapping[str, Any], by) -> QualityPolicy:
    """Applies the validated changes under the policy's row lock (the campaign lock actions take)."""
    QualityPolicy.objects.get_or_create(campaign=campaign)
    policy = QualityPolicy.objects.select_for_update().get(campaign=campaign)
    for name, value in changes.items():
        setattr(policy, name, value)
    policy.updated_by = by
    policy.full_clean(exclude=["campaign"])
    policy.save()
    return policy
