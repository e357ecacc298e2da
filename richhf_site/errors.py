"""One error contract for the API: {"detail": str, "errors": {field: [messages]}}.

Services raise ApplicationError (a rule of the domain was broken) and the handler maps it to
a 4xx; DRF's validation errors keep their field names so a client can point at the field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


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


def _first_message(errors: Any) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = _first_message(value)
            return f"{key}: {inner}" if key != "non_field_errors" else inner
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message, **exc.extra}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"detail": _first_message(errors), "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    return response
