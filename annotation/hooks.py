"""Extension points through which apps above annotation take part in its work.

annotation is the lowest app: it owns items, assignments and answers and imports no app above
it. An app that must react to annotation's events, or add to what a rater is sent, registers
here from its AppConfig.ready(), as Django's own apps connect to each other:

- item completed: aggregation enqueues the aggregation of an item once its k-th answer is
  committed;
- item answers changed: quality control excluded or re-included answers of items
  (annotation/moderation.py); aggregation recomputes their aggregates from the answers that
  still count;
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
# Given the ids of items whose set of counting answers changed (an exclusion or its undo).
ItemAnswersChangedReceiver = Callable[[Sequence[int]], None]
# Given the leases of one response, returns each one's value of the field by assignment id;
# an assignment it leaves out gets null. Called once per response, so it can read in bulk.
LeasePayloadProvider = Callable[[Sequence[Assignment]], Mapping[int, Any]]

_item_completed: dict[str, ItemCompletedReceiver] = {}
_lease_payload: dict[str, LeasePayloadProvider] = {}
_item_answers_changed: dict[str, ItemAnswersChangedReceiver] = {}


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


def item_answers_changed_connect(*, name: str, receiver: ItemAnswersChangedReceiver) -> None:
    """Calls receiver(item_ids) after the transaction that excludes or re-includes answers commits."""
    _item_answers_changed[name] = receiver


def item_answers_changed_send(*, item_ids: Sequence[int]) -> None:
    """Runs every receiver after commit; a failure is logged, never raised (the exclusion is
    stored either way, and the quality recompute on beat finds aggregates that still hold an
    excluded answer, or miss a re-included one, and recomputes them)."""
    ids = sorted(set(item_ids))
    if not ids:
        return
    for name, receiver in list(_item_answers_changed.items()):
        try:
            receiver(ids)
        except Exception:
            logger.exception("item_answers_changed receiver %r failed for items %s", name, ids)


def lease_payload_register(*, field: str, provider: LeasePayloadProvider) -> None:
    """Adds `field` to every assignment the rater API returns, valued by provider."""
    _lease_payload[field] = provider


def lease_payload_fields() -> list[str]:
    return list(_lease_payload)


def lease_payloads(*, assignments: Sequence[Assignment]) -> dict[str, Mapping[int, Any]]:
    """field -> {assignment id -> value} for the given assignments, one provider call each."""
    return {field: provider(assignments) for field, provider in _lease_payload.items()}
