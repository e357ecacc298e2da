"""Recording a version's fields while a run or a prediction pass goes on, and the run's
heartbeat."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connection
from django.utils import timezone

from ..models import ModelVersion

HEARTBEAT_S = 30


def version_fields_record(*, version: ModelVersion, **fields: Any) -> None:
    """Sets the fields on the instance and writes them with one UPDATE, without a row lock:
    progress, stage and results are written by the one worker that claimed the run."""
    for name, value in fields.items():
        setattr(version, name, value)
    ModelVersion.objects.filter(pk=version.pk).update(**fields)


class VersionHeartbeat:
    """Touches heartbeat_at every HEARTBEAT_S from a thread while training runs, so the beat
    tick can tell a live long run from a crashed one."""

    def __init__(self, version_id: int) -> None:
        self.version_id = version_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_S):
                ModelVersion.objects.filter(pk=self.version_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

    def __enter__(self) -> VersionHeartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
