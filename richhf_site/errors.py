"""One error contract for the API: {"detail": str, "errors": {field path: [messages]}}.

Services raise ApplicationError (a rule of the domain was broken) and the handler maps it to
a 4xx; DRF's validation errors keep their field names so a client can point at the field.
Nested fields are flattened to dotted paths ("scores.overall", "implausible_points.1.0"), so
``errors`` is always one flat object of string lists; it is ``{}`` when no field is to blame.

Everything under /api/ answers this way, including what never reaches a DRF view: URL
resolver 404s, oversized bodies (413), Django's 400/403 and uncaught errors (500) go through
the handler400/403/404/500 hooks below, which keep Django's HTML pages outside /api/.
A database or broker that cannot be reached is a 503 with Retry-After, not a 500 page.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler, set_rollback

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Seconds a client should wait before retrying after a 503 (broker or database unreachable).
RETRY_AFTER_S = 10


class ApplicationError(Exception):
    """A domain rule refused the request. status_code says which 4xx."""

    def __init__(self, message: str, *, status_code: int = 400, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.field = field
        self.extra = extra or {}


class Conflict(ApplicationError):
    def __init__(self, message: str, **kwargs: Any):
        super().__init__(message, status_code=status.HTTP_409_CONFLICT, **kwargs)


def _broker_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the Celery broker cannot be reached". kombu wraps most transport
    errors in its OperationalError; redis-py's own can still escape from a result lookup or a
    direct client. Imported here, not at module level, so the handler loads without either."""
    found: list[type[BaseException]] = []
    try:
        import kombu.exceptions

        found.append(kombu.exceptions.OperationalError)
    except ImportError:  # pragma: no cover - kombu comes with Celery
        pass
    try:
        import redis.exceptions

        found += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - only the Redis broker needs redis-py
        pass
    return tuple(found)


BROKER_ERRORS = _broker_errors()
# OperationalError covers refused and dropped connections, but also deadlocks, lock timeouts
# and a server shutting down: all of them pass when retried, which is what a 503 tells.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DatabaseOperationalError, DatabaseInterfaceError)

BROKER_UNAVAILABLE = "The task queue (message broker) is unreachable; try again in a moment."
DATABASE_UNAVAILABLE = "The database cannot be reached or is busy; try again in a moment."


def is_api_request(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {dotted path: [messages]}. A nested serializer's
    non-field errors belong to the serializer's own path; top-level ones keep DRF's key."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                path = prefix or str(key)
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for name, messages in flatten_errors(value, path).items():
                out.setdefault(name, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            if detail:
                out[prefix or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in detail]
        else:
            # A ListSerializer's errors: one entry per item, {} for the valid ones.
            for index, item in enumerate(detail):
                path = f"{prefix}.{index}" if prefix else str(index)
                for name, messages in flatten_errors(item, path).items():
                    out.setdefault(name, []).extend(messages)
    else:
        out[prefix or api_settings.NON_FIELD_ERRORS_KEY] = [str(detail)]
    return out


def _summary(errors: dict[str, list[str]]) -> str:
    for path, messages in errors.items():
        message = messages[0] if messages else "invalid"
        return message if path == api_settings.NON_FIELD_ERRORS_KEY else f"{path}: {message}"
    return "Invalid input."


def error_body(detail: str, errors: dict[str, list[str]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "errors": errors or {}, **extra}


def _unavailable(exc: BaseException) -> tuple[str, str] | None:
    """(which service, message) when ``exc`` means a backing service cannot be reached."""
    if BROKER_ERRORS and isinstance(exc, BROKER_ERRORS):
        return "broker", BROKER_UNAVAILABLE
    if isinstance(exc, DATABASE_ERRORS):
        return "database", DATABASE_UNAVAILABLE
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        errors = {exc.field: [exc.message]} if exc.field else {}
        return Response(error_body(exc.message, errors, **exc.extra), status=exc.status_code)
    unavailable = _unavailable(exc)
    if unavailable is not None:
        service, message = unavailable
        logger.error("API request failed: the %s is unreachable", service, exc_info=exc)
        set_rollback()
        return Response(
            error_body(message), status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_S)}
        )
    if isinstance(exc, RequestDataTooBig):
        # Django raises it lazily, wherever the body is first read.
        return Response(_body_too_large(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):  # e.g. TooManyFieldsSent: Django's answer is a 400
        exc = exceptions.ParseError(str(exc) or "Bad request.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail})
        response.data = error_body(_summary(errors), errors)
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = error_body(str(response.data["detail"]))
    else:
        response.data = error_body(str(getattr(exc, "detail", "") or "Request refused."), flatten_errors(response.data))
    return response


def _body_too_large(limit: int | None = None) -> dict[str, Any]:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if limit is None else limit
    return error_body(f"The request body is too large (at most {limit} bytes).")


def body_too_large_response(limit: int | None = None) -> JsonResponse:
    return JsonResponse(_body_too_large(limit), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


# --------------------------------------------------------------------------- Django's hooks
# richhf_site/urls.py names these as handler400/403/404/500. Django calls them for what
# happens outside a DRF view (or escapes one); under /api/ they answer the same JSON.


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api_request(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return body_too_large_response()
    return JsonResponse(error_body("Bad request."), status=status.HTTP_400_BAD_REQUEST)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api_request(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(
        error_body("You do not have permission to perform this action."), status=status.HTTP_403_FORBIDDEN
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body(f"No API endpoint at {request.path}."), status=status.HTTP_404_NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    if not is_api_request(request):
        return defaults.server_error(request)
    # Django calls this inside its except block, so the exception is still at hand.
    current = sys.exc_info()[1]
    unavailable = _unavailable(current) if current is not None else None
    if unavailable is not None:
        response = JsonResponse(error_body(unavailable[1]), status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    return JsonResponse(
        error_body("Internal server error; it has been logged."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
    )
