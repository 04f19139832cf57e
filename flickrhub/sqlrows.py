"""Hand-written SELECTs for the hottest reads, turned into model instances as a queryset would.

Django compiles a queryset's SQL again on every evaluation. For a job with its account, app
and client (four wide tables, 60-odd columns) that took about 3 ms of CPU, twenty times the
database's own round trip, on every job a worker runs; an account with its app cost as much
on every enqueue. The reads here build their column lists once per process from the models'
own fields, and each row goes through the fields' converters (`from_db_value`, the backend's
own) and `Model.from_db`, as `QuerySet` iteration does, so the instances are the ORM's.

A `Join` is a model and the models its foreign keys lead to, each under a table alias:

    JOB = Join((Job, "j"), (FlickrAccount, "a", "j.account"), ...)
    sql = f"SELECT {JOB.columns()} FROM ... WHERE j.id = %s"
    job = JOB.first(sql, [params])   # job.account is set, no second query

Only for reads whose SQL is plain and stable; anything else stays with the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

Converter = Any  # (value, expression, connection) -> value


def param(model: type[models.Model], field_name: str, value: Any, *, using: str = "default") -> Any:
    """`value` as a query parameter for `model.field_name` (a UUID is text on SQLite)."""
    model_field = model._meta.pk if field_name == "pk" else model._meta.get_field(field_name)
    return model_field.get_db_prep_value(value, connections[using])  # type: ignore[union-attr]


@dataclass(frozen=True)
class Part:
    model: type[models.Model]
    alias: str
    # "<alias>.<foreign key name>": which earlier part's relation this instance fills.
    parent: str = ""


class Join:
    def __init__(self, *parts: tuple[Any, ...]) -> None:
        self.parts = tuple(Part(*part) for part in parts)
        # Per (database alias, vendor): the converters of every part's fields. The backend's
        # converters are methods of one thread's connection; they read only settings.
        self._columns: dict[str, str] = {}
        self._converters: dict[tuple[str, str], list[list[list[tuple[Converter, Any]]]]] = {}

    def columns(self, connection: BaseDatabaseWrapper | None = None) -> str:
        """The SELECT list: every concrete column of every part, in field order."""
        connection = connection or connections["default"]
        listed = self._columns.get(connection.vendor)
        if listed is None:
            qn = connection.ops.quote_name
            listed = self._columns[connection.vendor] = ", ".join(
                f"{qn(part.alias)}.{qn(str(f.column))}"
                for part in self.parts
                for f in part.model._meta.concrete_fields
            )
        return listed

    def table(self, model: type[models.Model], connection: BaseDatabaseWrapper | None = None) -> str:
        return (connection or connections["default"]).ops.quote_name(model._meta.db_table)

    def first(self, sql: str, params: Sequence[Any], *, using: str = "default") -> Any:
        """Runs `sql` (whose SELECT list is `columns()`) and returns the first part's instance
        of its first row, with the other parts set as its (and each other's) related objects,
        or None without a row."""
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return None if row is None else self.instances(row, connection)[0]

    def instances(self, row: Sequence[Any], connection: BaseDatabaseWrapper) -> list[models.Model]:
        converters = self._converters_for(connection)
        built: dict[str, models.Model] = {}
        out: list[models.Model] = []
        at = 0
        for part, part_converters in zip(self.parts, converters, strict=True):
            fields = part.model._meta.concrete_fields
            values = list(row[at : at + len(fields)])
            at += len(fields)
            for n, chain in enumerate(part_converters):
                for convert, expression in chain:
                    values[n] = convert(values[n], expression, connection)
            instance = part.model.from_db(connection.alias, [f.attname for f in fields], values)
            if part.parent:
                owner_alias, _, relation = part.parent.partition(".")
                owner = built[owner_alias]
                owner._meta.get_field(relation).set_cached_value(owner, instance)  # type: ignore[union-attr]
            built[part.alias] = instance
            out.append(instance)
        return out

    def _converters_for(self, connection: BaseDatabaseWrapper) -> list[list[list[tuple[Converter, Any]]]]:
        """Per part, per field: the converters a queryset would apply (the compiler's
        `get_converters`: the backend's first, then the field's)."""
        key = (connection.alias, connection.vendor)
        cached = self._converters.get(key)
        if cached is None:
            cached = []
            for part in self.parts:
                per_field = []
                for f in part.model._meta.concrete_fields:
                    column = f.get_col(part.alias)
                    chain = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                    per_field.append([(convert, column) for convert in chain])
                cached.append(per_field)
            self._converters[key] = cached
        return cached
