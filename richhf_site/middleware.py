"""Request guards for the API that must act before any view reads the body."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .errors import body_too_large_response, is_api_request


class ApiBodyLimitMiddleware:
    """Refuses an /api/ request whose declared body exceeds DATA_UPLOAD_MAX_MEMORY_SIZE with a
    413 JSON, before anything reads it.

    Django checks the limit only when ``request.body`` or ``request.POST`` is read, and DRF's
    parsers read the raw stream instead, so without this a 10 MB JSON body would be parsed in
    full. DRF reads no body without a Content-Length (its ``_load_stream``), so the declared
    length is the whole story here. Pages outside /api/ keep Django's own check (an HTML 400).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and is_api_request(request):
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                return body_too_large_response(limit)
        return self.get_response(request)
