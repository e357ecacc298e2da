"""The OpenAPI document states every response, 4xx included (issue 12, "An exact schema").

- ErrorResponse is the one error contract of richhf_site/errors.py.
- AutoSchema adds the error responses every operation can give, so no view has to list them,
  and states two rules drf-spectacular leaves out: a trimmed non-blank CharField needs a
  non-space character, and an `<int:...>` path parameter is never negative (the URL resolver
  does not route one).
- Serializers nested in a view (the house style's `Input`/`Output`) are named after it, so two
  views' `Input` never collide.
- limit_offset_page() is the envelope LimitOffsetPagination answers with, for APIViews that
  paginate by hand (drf-spectacular only wraps generic list views).

A bounded schemathesis run (tests/richhf_site/test_api_contract.py) checks the document against
the live responses for a rater, a lead and an admin.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers


class ErrorResponse(serializers.Serializer):
    """{"detail": str, "errors": {field: [str]}}: `errors` names the fields of a validation
    error (a nested field by its dotted path); `code` says which conflict it was."""

    detail = serializers.CharField(help_text="One sentence for a person.")
    # SerializerMetaclass moves declared fields into _declared_fields, so this one does not
    # shadow Serializer.errors at run time; only the type checker sees the clash.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per field (a nested field by dotted path, e.g. scores.overall), its messages; {} when no field is to blame.",
    )
    code = serializers.CharField(
        required=False, help_text="On a 409: the state that conflicts (e.g. `submitted`, `lease_expired`)."
    )


# Why each status can answer, for the generated docs.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request is malformed or breaks a rule; `errors` names the fields.",
    401: "The credentials are wrong (an unknown or expired token).",
    403: "Not signed in, or the caller's role may not do this.",
    404: "No such object among the caller's, or no such route.",
    409: "The object's state forbids this (e.g. the lease expired, the item is already submitted).",
    413: "The body is larger than the server accepts.",
    415: "The body's content type is not one the operation parses.",
    429: "Too many requests (failed logins are throttled).",
    503: "A backing service (database or message broker) is unreachable; nothing was written.",
}

# Every operation: authentication, roles, routing and the backing services can refuse any of them.
COMMON_ERRORS = (400, 401, 403, 404, 429, 503)
# Any write: a body over the size limit is refused before the view runs.
WRITE_ERRORS = (413,)
# Operations that parse a body: its content type can be refused too.
BODY_ERRORS = (415,)


def _error_response(code: int) -> OpenApiResponse:
    return OpenApiResponse(ErrorResponse, description=ERROR_DESCRIPTIONS[code])


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = list(COMMON_ERRORS)
        if self.method in ("POST", "PUT", "PATCH"):
            codes += WRITE_ERRORS
            if self.get_request_serializer() is not None:
                codes += BODY_ERRORS
        for code in codes:
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(_error_response(code), str(code))
        return dict(sorted(responses.items()))

    def _get_serializer_field_meta(self, field: Any, direction: Any) -> dict[str, Any]:
        meta: dict[str, Any] = super()._get_serializer_field_meta(field, direction)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.allow_blank
            and field.trim_whitespace
            and not isinstance(field, serializers.ChoiceField)
        ):
            # DRF strips the value before the blank check, so "  " is refused like "".
            meta["pattern"] = r"\S"
        return meta

    def _resolve_path_parameters(self, variables: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if schema.get("type") == "integer":
                # `<int:...>` matches digits only: a negative id never reaches a view.
                schema.setdefault("minimum", 0)
        return parameters

    def _get_response_for_code(
        self, serializer: Any, status_code: Any, media_types: Any = None, direction: Any = "response"
    ) -> dict[str, Any]:
        if serializer is ErrorResponse and int(status_code) in ERROR_DESCRIPTIONS:
            # A view that lists an error status (409) gets the same words as the common ones.
            serializer = _error_response(int(status_code))
        response: dict[str, Any] = super()._get_response_for_code(serializer, status_code, media_types, direction)
        return response

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        # The house style nests `Input`/`Output` in their view: two views' `Input` would share
        # one component name (drf-spectacular warns and documents only one), so a nested class
        # is named with its outer class (ExtraRaterRequestApiInput).
        qualname = type(serializer).__qualname__
        if "." in qualname and "<locals>" not in qualname:
            return qualname.replace(".", "")
        name: str = super().get_serializer_name(serializer, direction)
        return name

    def get_auth(self) -> list[dict[str, Any]]:
        # A view open to everyone (the token endpoint: no permission classes) needs no credentials.
        if all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            return []
        auth: list[dict[str, Any]] = super().get_auth()
        return auth


def limit_offset_page(child: type[serializers.Serializer], *, name: str) -> type[serializers.Serializer]:
    """The page LimitOffsetPagination.get_paginated_response() answers with, around `child`."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "__doc__": f"One page of {child.__name__}: `limit` and `offset` choose it.",
            "count": serializers.IntegerField(help_text="How many there are in all."),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": child(many=True),
        },
    )
