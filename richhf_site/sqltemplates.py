"""Hot statements without the ORM's per-call compile: built once per process and filled in
(SQLTemplate), or written out and read back into models (model_from_row).

On the rater API's hot paths the ORM's compile step (query -> SQL) cost more than running the
statement (issue 16: about a quarter of a request). A :class:`SQLTemplate` wraps a function
that builds ``(sql, params)`` from keyword values. The first call builds it once with stand-in
values, records where each stand-in lands among the parameters, and checks the template
against a real build; later calls substitute the values and skip the ORM. A build whose
parameters cannot be traced back (a value the ORM transformed) is simply rebuilt every call.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

logger = logging.getLogger(__name__)

Built = tuple[str, list[Any]]
_M = TypeVar("_M", bound=Model)

# Stand-ins no real value can equal: negative ids, datetimes in the 1900s.
_STAND_IN_BASE = -(10**15)


def _stand_in(n: int, value: Any) -> tuple[Any, Any]:
    """(what the build receives, what shows up among its parameters)."""
    if isinstance(value, Model):
        pk = _STAND_IN_BASE - n
        # __class__, not type(): request.user is a SimpleLazyObject around the user, whose
        # type is the wrapper but whose __class__ is the model.
        return value.__class__(pk=pk), pk
    if isinstance(value, datetime):
        stand_in = datetime(1901 + n, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
        return stand_in, stand_in
    if isinstance(value, int) and not isinstance(value, bool):
        return _STAND_IN_BASE - n, _STAND_IN_BASE - n
    raise TypeError(f"SQLTemplate: no stand-in for {type(value).__name__}")


def _param(value: Any) -> Any:
    return value.pk if isinstance(value, Model) else value


class SQLTemplate:
    def __init__(self, build: Callable[..., Built]) -> None:
        self._build = build
        self._templates: dict[str, tuple[str, list[Any], list[str | None]] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, **values: Any) -> Built:
        key = connection.vendor
        if key not in self._templates:
            with self._lock:
                if key not in self._templates:
                    try:
                        self._templates[key] = self._compile(values)
                    except Exception:  # the template is an optimisation: never fail a request over it
                        logger.exception(
                            "SQLTemplate %s: could not compile; it is built on every call", self._build.__name__
                        )
                        self._templates[key] = None
        template = self._templates[key]
        if template is None:
            return self._build(**values)
        sql, params, slots = template
        return sql, [param if slot is None else _param(values[slot]) for param, slot in zip(params, slots, strict=True)]

    def _compile(self, values: dict[str, Any]) -> tuple[str, list[Any], list[str | None]] | None:
        given, seen = {}, {}
        for n, (name, value) in enumerate(sorted(values.items())):
            given[name], seen[name] = _stand_in(n, value)
        sql, params = self._build(**given)
        slots: list[str | None] = []
        for param in params:
            names = [name for name, mark in seen.items() if type(param) is type(mark) and param == mark]
            slots.append(names[0] if names else None)
        template = (sql, list(params), slots)
        # Every stand-in must be found, and the template must give what a real build gives.
        real = self._build(**values)
        filled = (sql, [p if s is None else _param(values[s]) for p, s in zip(params, slots, strict=True)])
        if set(slots) - {None} != set(values) or filled != (real[0], list(real[1])):
            logger.warning("SQLTemplate %s: parameters not traceable; it is built on every call", self._build.__name__)
            return None
        return template


@functools.cache
def model_columns(model: type[Model], alias: str) -> str:
    """Every concrete column of `model` as `alias.column, ...`, in model_from_row's order
    (built once per model and alias: the written-out statements ask on every request)."""
    return ", ".join(f"{alias}.{f.column}" for f in model._meta.concrete_fields)


def model_from_row(model: type[_M], values: Sequence[Any]) -> _M:
    """An instance of `model` from a raw row of all its concrete columns (model_columns'
    order), converted as the ORM converts them: the backend's converters, then the field's
    (JSON fields arrive as text, SQLite's dates as strings)."""
    converted = []
    for (col, converters), value in zip(_row_converters(model), values, strict=True):
        for convert in converters:
            value = convert(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in model._meta.concrete_fields], converted)


def models_from_row(row: Sequence[Any], *models: type[Model]) -> tuple[list[Any], Sequence[Any]]:
    """The instances of `models` from a row that selected each one's model_columns in turn,
    and the row's remaining values (extra columns after them)."""
    instances, at = [], 0
    for model in models:
        n = len(model._meta.concrete_fields)
        instances.append(model_from_row(model, row[at : at + n]))
        at += n
    return instances, row[at:]


_CONVERTERS: dict[tuple[str, type[Model]], list[tuple[Any, list[Any]]]] = {}


def _row_converters(model: type[Model]) -> list[tuple[Any, list[Any]]]:
    key = (connection.vendor, model)
    if key not in _CONVERTERS:
        table = model._meta.db_table
        pairs = []
        for f in model._meta.concrete_fields:
            col = f.get_col(table)
            pairs.append((col, [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]))
        _CONVERTERS[key] = pairs
    return _CONVERTERS[key]
