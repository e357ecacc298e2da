"""The API's JSON parser: DRF's strict JSON, plus a nesting limit and finite numbers only.

Python's json module recurses once per nesting level, so a body of ten thousand ``[`` ends in
a RecursionError that DRF does not catch (a 500). No request of this API nests deeper than a
few levels (a submit is object > list > point > number), so a body nested deeper than
``settings.RICHHF_MAX_JSON_DEPTH`` is a parse error (400) before any serializer sees it.
The body *size* is Django's check (DATA_UPLOAD_MAX_MEMORY_SIZE, raised as RequestDataTooBig
when DRF reads request.body; richhf_site.errors answers 413).
"""

from __future__ import annotations

import codecs
import json
import math
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

DEFAULT_MAX_JSON_DEPTH = 64


def max_json_depth() -> int:
    return int(getattr(settings, "RICHHF_MAX_JSON_DEPTH", DEFAULT_MAX_JSON_DEPTH))


def json_shape_problem(value: Any, *, max_depth: int) -> str | None:
    """Why a parsed JSON value is refused, or None. ``[]`` is depth 1, a scalar depth 0.

    ``1e999`` is valid JSON that Python reads as infinity, which strict JSON's refusal of
    ``Infinity`` was meant to keep out; no field of this API takes a non-finite number.
    Walks with an explicit stack, so it never recurses itself.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return "numbers must be finite"
        if isinstance(node, (dict, list)):
            if depth + 1 > max_depth:
                return f"nested deeper than {max_depth} levels"
            children = node.values() if isinstance(node, Mapping) else node
            stack.extend((child, depth + 1) for child in children)
    return None


class JSONParser(parsers.JSONParser):
    """Strict JSON (no NaN/Infinity, as DRF's STRICT_JSON), nested at most max_json_depth()."""

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        # DRF's check: only text codecs, so "charset=zlib_codec" cannot inflate a small body.
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]  # not in the stubs
        max_depth = max_json_depth()
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {max_depth} levels") from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity refused
            raise ParseError(f"JSON parse error - {exc}") from None
        problem = json_shape_problem(data, max_depth=max_depth)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
