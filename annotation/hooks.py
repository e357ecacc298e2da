"""Extension points through which apps above annotation take part in its work.

annotation is the lowest app: it owns items, assignments and answers and imports no app above
it. An app that must react to annotation's events, or add to what a rater is sent, registers
here from its AppConfig.ready(), as Django's own apps connect to each other:

- item completed: aggregation enqueues the aggregation of an item once its k-th answer is
  committed;
- lease payload: learning adds the active model's suggestion to each open lease the rater
  API returns, for all the leases of one response at once.

Registration is keyed by a name, so a second ready() (tests, autoreload) replaces rather than
doubles a receiver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .models import Assignment

logger = logging.getLogger(__name__)

ItemCompletedReceiver = Callable[[int], None]
# Given the leases of one response, returns each one's value of the field by assignment id;
# an assignment it leaves out gets null. Called once per response, so it can read in bulk.
LeasePayloadProvider = Callable[[Sequence[Assignment]], Mapping[int, Any]]

_item_completed: dict[str, ItemCompletedReceiver] = {}
_lease_payload: dict[str, LeasePayloadProvider] = {}


def item_completed_connect(*, name: str, receiver: ItemCompletedReceiver) -> None:
    """Calls receiver(item_id) after the transaction that completes an item commits."""
    _item_completed[name] = receiver


def item_completed_send(*, item_id: int) -> None:
    """Runs every receiver; one that fails is logged and the others still run.

    Runs after commit, so the answer is stored whatever happens here: a receiver's failure
    must not reach the rater as an error on an answer that was in fact saved. Aggregation's
    reconciler finds a completed item whose enqueue was lost and enqueues it again.
    """
    for name, receiver in list(_item_completed.items()):
        try:
            receiver(item_id)
        except Exception:
            logger.exception("item_completed receiver %r failed for item %s", name, item_id)


def lease_payload_register(*, field: str, provider: LeasePayloadProvider) -> None:
    """Adds `field` to every assignment the rater API returns, valued by provider."""
    _lease_payload[field] = provider


def lease_payload_fields() -> list[str]:
    return list(_lease_payload)


def lease_payloads(*, assignments: Sequence[Assignment]) -> dict[str, Mapping[int, Any]]:
    """field -> {assignment id -> value} for the given assignments, one provider call each."""
    return {field: provider(assignments) for field, provider in _lease_payload.items()}
