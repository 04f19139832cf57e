"""Hand-written SQL for the statements every job makes, with the ORM's own values and instances.

Django compiles a queryset's SQL again on every evaluation. For a job with its account, app
and client (four wide tables, 60-odd columns) that took about 3 ms of CPU, twenty times the
database's own round trip, on every job a worker runs; an account with its app cost as much
on every enqueue. The reads here build their column lists once per process from the models'
own fields, and each row goes through the fields' converters (`from_db_value`, the backend's
own) and `Model.from_db`, as `QuerySet` iteration does, so the instances are the ORM's.

A `Join` is a model and the models its foreign keys lead to, each under a table alias:

    JOB = Join((Job, "j"), (FlickrAccount, "a", "j.account"), ...)
    job = JOB.first(JOB.select() + " WHERE j.id = %s", [params])   # job.account set, no 2nd query

`insert` and `update` are the same idea for the writes every job makes (its row at enqueue,
its transitions, its attempt log): the values are prepared by the fields themselves
(`pre_save`, `get_db_prep_save`), only the statement is not compiled anew.

Only for statements whose SQL is plain and stable; anything else stays with the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

Converter = Any  # (value, expression, connection) -> value


def _field(model: type[models.Model], name: str) -> Any:
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


def param(model: type[models.Model], field_name: str, value: Any, *, using: str = "default") -> Any:
    """`value` as a query parameter for `model.field_name` (a UUID is text on SQLite)."""
    return _field(model, field_name).get_db_prep_value(value, connections[using])


def insert(instance: models.Model, *, using: str = "default") -> None:
    """INSERTs `instance` as `save(force_insert=True)` would, minus the signals (none of the
    hot-path models has receivers). An auto-increment id is left to the database and not read
    back: for rows nobody reads again through this instance (the attempt log).

    A NULL value is left out of the statement unless its column has a database default (the
    hub's have none): the database writes the same NULL, and a new job, 15 of whose 37 columns
    are still empty, sends that many parameters fewer."""
    connection = connections[using]
    opts = instance._meta
    auto_id = instance.pk is None
    fields, values = [], []
    for f in opts.concrete_fields:
        if auto_id and f.primary_key and f.db_returning:
            continue
        value = f.get_db_prep_save(f.pre_save(instance, True), connection)
        if value is not None or f.has_db_default():
            fields.append(f)
            values.append(value)
    key = (opts.label, connection.vendor, tuple(str(f.column) for f in fields))
    statement = _inserts.get(key)
    if statement is None:
        qn = connection.ops.quote_name
        statement = _inserts[key] = (
            f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(str(f.column)) for f in fields)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(fields))})"
        )
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
    instance._state.adding = False
    instance._state.db = using


# Per model, vendor and the columns a row has values for: a handful of shapes per model.
_inserts: dict[tuple[str, str, tuple[str, ...]], str] = {}


def update(
    model: type[models.Model], values: dict[str, Any], where: dict[str, Any], *, using: str = "default"
) -> int | None:
    """`UPDATE model SET values WHERE where` (all equalities) and the number of rows changed,
    or None — nothing run — when a value is an expression or a relation: the ORM does those."""
    built = _update_sql(model, values, where, using)
    if built is None:
        return None
    with connections[using].cursor() as cursor:
        cursor.execute(*built)
        return int(cursor.rowcount)


def update_returning(
    model: type[models.Model],
    values: dict[str, Any],
    where: dict[str, Any],
    *,
    returning: str,
    using: str = "default",
) -> list[Any] | None:
    """As `update`, and the field `returning` of each row changed, as the rows hold it after
    the UPDATE (converted as a queryset would)."""
    built = _update_sql(model, values, where, using)
    if built is None:
        return None
    connection = connections[using]
    model_field = _field(model, returning)
    sql, params = built
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(model_field.column)}", params)
        rows = cursor.fetchall()
    expression = model_field.get_col(model._meta.db_table)
    converters = connection.ops.get_db_converters(expression) + model_field.get_db_converters(connection)
    out = []
    for (value,) in rows:
        for converter in converters:
            value = converter(value, expression, connection)
        out.append(value)
    return out


def _update_sql(
    model: type[models.Model], values: dict[str, Any], where: dict[str, Any], using: str
) -> tuple[str, list[Any]] | None:
    connection = connections[using]
    qn = connection.ops.quote_name
    sets, conditions, params = [], [], []
    for name, value in values.items():
        model_field = _field(model, name)
        if model_field.is_relation or hasattr(value, "resolve_expression"):
            return None
        sets.append(f"{qn(model_field.column)} = %s")
        params.append(model_field.get_db_prep_save(value, connection))
    for name, value in where.items():
        model_field = _field(model, name)
        conditions.append(f"{qn(model_field.column)} = %s")
        params.append(model_field.get_db_prep_value(value, connection))
    sql = f"UPDATE {qn(model._meta.db_table)} SET {', '.join(sets)} WHERE {' AND '.join(conditions)}"  # noqa: S608
    return sql, params


@dataclass(frozen=True)
class Part:
    model: type[models.Model]
    alias: str
    # "<alias>.<foreign key name>": which earlier part's relation this instance fills.
    parent: str = ""


class Join:
    """A model and the models its foreign keys lead to, read side by side in one row."""

    def __init__(self, *parts: tuple[Any, ...]) -> None:
        self.parts = tuple(Part(*part) for part in parts)
        # Per vendor: the SELECT list; per (vendor, source): the whole SELECT … JOIN.
        self._columns: dict[str, str] = {}
        self._selects: dict[tuple[str, str], str] = {}
        # Per (database alias, vendor): the converters of every part's fields. The backend's
        # converters are methods of one thread's connection; they read only settings.
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

    def select(self, source: str = "", connection: BaseDatabaseWrapper | None = None) -> str:
        """`SELECT <columns()> FROM <first part's table> <alias> JOIN …`, each later part joined
        on the foreign key that leads to it. `source` reads the first part from elsewhere (a
        CTE's name) instead of its table. A WHERE is for the caller to add."""
        connection = connection or connections["default"]
        built = self._selects.get((connection.vendor, source))
        if built is None:
            qn = connection.ops.quote_name
            first = self.parts[0]
            source_sql = source or qn(first.model._meta.db_table)
            built = f"SELECT {self.columns(connection)} FROM {source_sql} {first.alias}"  # noqa: S608
            models_by_alias = {part.alias: part.model for part in self.parts}
            for part in self.parts[1:]:
                owner_alias, _, relation = part.parent.partition(".")
                foreign_key = _field(models_by_alias[owner_alias], relation)
                built += (
                    f" JOIN {qn(part.model._meta.db_table)} {part.alias} ON {part.alias}."
                    f"{qn(foreign_key.target_field.column)} = {owner_alias}.{qn(foreign_key.column)}"
                )
            self._selects[(connection.vendor, source)] = built
        return built

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
