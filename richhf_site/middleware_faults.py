"""The database unreachable (refused, dropped, restarting) is a 503 with Retry-After, not a 500.

Nothing is half-written either way: every write is one transaction, which PostgreSQL rolls
back when the connection fails. What this adds is the answer: JSON in the API's error
contract under /api/, a short plain-text page elsewhere, so a client knows to retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from .errors import DATABASE_ERRORS, DATABASE_UNAVAILABLE, RETRY_AFTER_S, error_body

logger = logging.getLogger(__name__)

# One wording with the API's exception handler. Not "nothing was saved": a connection lost
# during COMMIT may have committed; every write is idempotent on retry (an identical submit is
# answered 200), so "try again" is always right.
MESSAGE = DATABASE_UNAVAILABLE


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_ERRORS):
            return None
        logger.warning("%s %s: database unreachable (%s)", request.method, request.path, exception)
        response: HttpResponse
        if request.path.startswith("/api/"):
            response = JsonResponse(error_body(MESSAGE), status=503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
