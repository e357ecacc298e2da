"""Webhook writes: endpoints (admins' registrations) and deliveries (emit, attempt, sweep)."""

from .deliveries import (
    AttemptOutcome,
    deliveries_enqueue_due,
    delivery_attempt,
    event_emit,
    export_finished_emit,
    item_completed_emit,
    model_activated_emit,
)
from .endpoints import endpoint_create, endpoint_delete, endpoint_update

__all__ = [
    "AttemptOutcome",
    "deliveries_enqueue_due",
    "delivery_attempt",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_update",
    "event_emit",
    "export_finished_emit",
    "item_completed_emit",
    "model_activated_emit",
]
