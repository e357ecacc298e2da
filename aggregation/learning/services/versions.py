"""Recording a version's fields while a run or a prediction pass goes on."""

from __future__ import annotations

from typing import Any

from ..models import ModelVersion


def version_fields_record(*, version: ModelVersion, **fields: Any) -> None:
    """Sets the fields on the instance and writes them with one UPDATE, without a row lock:
    progress, stage and results are written by the one worker that claimed the run."""
    for name, value in fields.items():
        setattr(version, name, value)
    ModelVersion.objects.filter(pk=version.pk).update(**fields)
