"""What a request does when a service it needs is down: a clear 503, never a 500 or a lie.

Two kinds of work go through the broker. Work with a reconciler on beat (an item's aggregate,
an export job) is recorded in the database first; a failed publish is logged and the
reconciler enqueues it again once the broker is back, so the request still gets its 2xx.
Work without one (a dashboard refresh) undoes what it wrote and answers 503 with
BrokerUnavailable, so the client knows to try again and nothing stays half-done.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from rest_framework import status

from .errors import BROKER_ERRORS as _HANDLER_BROKER_ERRORS
from .errors import BROKER_UNAVAILABLE, ApplicationError

logger = logging.getLogger(__name__)

# What a publish raises when Redis refuses, drops or does not answer: the error handler's
# broker errors (kombu's OperationalError once the publish retry policy is spent, redis-py's
# connection errors), plus the builtin ones a socket timeout or reset can still surface as.
BROKER_ERRORS: tuple[type[BaseException], ...] = (*_HANDLER_BROKER_ERRORS, ConnectionError, TimeoutError)


class ServiceUnavailable(ApplicationError):
    """A service the action needs (task broker, database) cannot be reached: 503, retry later."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, status_code=status.HTTP_503_SERVICE_UNAVAILABLE, **kwargs)


class BrokerUnavailable(ServiceUnavailable):
    def __init__(self, message: str = BROKER_UNAVAILABLE) -> None:
        super().__init__(message)


def task_publish(task: Task, *args: Any) -> None:
    """task.delay(*args), raising BrokerUnavailable when the broker cannot take the message.

    Bounded in time by the broker socket timeouts and the publish retry policy in settings
    ("hardening: faults"), so a dead broker costs a request a few seconds, not minutes.
    """
    try:
        task.delay(*args)
    except BROKER_ERRORS as exc:
        logger.warning("could not enqueue %s%r: broker unreachable (%s)", task.name, args, exc)
        raise BrokerUnavailable() from exc
