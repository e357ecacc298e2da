from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig

if TYPE_CHECKING:
    from annotation.models import Assignment


def _suggestions(assignments: Sequence[Assignment]) -> dict[int, dict[str, Any]]:
    from .selectors import suggestions_for_assignments

    return suggestions_for_assignments(assignments=assignments)


class LearningConfig(AppConfig):
    name = "aggregation.learning"
    label = "learning"
    verbose_name = "Active learning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # annotation imports nothing from learning: the rater API's `suggestion` field comes
        # through annotation's lease payload hook, asked once for all the leases of a response.
        from annotation import hooks

        hooks.lease_payload_register(field="suggestion", provider=_suggestions)
