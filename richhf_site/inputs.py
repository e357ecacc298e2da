"""Building blocks for API input serializers that take JSON as typed.

DRF's fields coerce: FloatField takes "0.5" and true, IntegerField takes "3" and 3.0,
BooleanField takes "yes" and 1, CharField takes 5, and a Serializer ignores keys it does not
know. A client that sends any of those has a bug we want it to see, so these fields accept
only the JSON type they document, and StrictInput refuses unknown keys at every level (a
nested StrictInput names them by dotted path through richhf_site.errors: "scores.sharpness").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

UNKNOWN_FIELD = "unknown field"


class JSONNumberField(serializers.FloatField):
    """A JSON number (integer or fraction), finite; never a string or a boolean."""

    default_error_messages = {"invalid": "Must be a JSON number (not a string or a boolean)."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)) or not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONIntegerField(serializers.IntegerField):
    """A JSON integer; never a string, a boolean or a number with a fraction part (3.0)."""

    default_error_messages = {"invalid": "Must be a JSON integer (not a string, a boolean or 3.0)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONBooleanField(serializers.BooleanField):
    """JSON true or false; never "yes", 1 or "true"."""

    default_error_messages = {"invalid": "Must be a JSON boolean (true or false)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class JSONStringField(serializers.CharField):
    """A JSON string; never a number or a boolean turned into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictInput(serializers.Serializer):
    # No docstring on purpose: drf-spectacular would show it as every subclass's description.
    # It refuses keys that are not writable fields, naming each with the other field errors.

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[ErrorDetail]] = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = {str(key): [ErrorDetail(UNKNOWN_FIELD, code="unknown")] for key in data if key not in writable}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class StrictInputSchema(OpenApiSerializerExtension):
    """The schema says what StrictInput enforces: no properties beyond the documented ones."""

    target_class = StrictInput
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        return schema
