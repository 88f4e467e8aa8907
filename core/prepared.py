"""Lookups on the hottest paths with their SQL compiled once per process.

Building a `select_related(...).get(...)` costs more CPU in Django's query compiler than the
database spends answering it (docs/benchmarks.md, "Hot path: the quota read"). A
`PreparedGet` compiles its queryset the first time it runs and keeps the SQL, the
row layout and the value converters; each later call only substitutes the looked-up value,
runs the statement and builds the model instances as the ORM would (the same converters, the
same related-object caches). Nothing read from the database is kept between calls: every call
runs the statement, so what it returns is always the committed row.

On PostgreSQL the statement is also prepared on the server (`PREPARE`, once per database
connection, which outlives requests in the pool) and each call is an `EXECUTE`: planning a
five-table join cost the server several times what running it does (docs/benchmarks.md).
The `PREPARE` is connection setup, like Django's own: it runs on the driver's connection and
is not counted among the request's queries; every `EXECUTE` is.
"""

from __future__ import annotations

import itertools
import re
import weakref
from typing import Callable

from django.db import DatabaseError, connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

_SENTINEL = "\x00egret-prepared-value\x00"
# PostgreSQL's answers for a prepared statement that no longer fits: "cached plan must not
# change result type" (a migration changed a selected column) and "prepared statement does
# not exist" (something deallocated it).
_STALE_STATEMENT = {"0A000", "26000"}
_PLACEHOLDER = re.compile(r"%%|%s")
_names = itertools.count(1)


def _numbered(sql: str) -> str:
    """Django's `%s` placeholders as PostgreSQL's `$1, $2...` (and `%%` as `%`), for PREPARE."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda m: "%" if m.group() == "%%" else f"${next(numbers)}", sql)


class _Compiled:
    def __init__(self, queryset: QuerySet, alias: str, name: str) -> None:
        # As QuerySet.get: the model's default ordering means nothing for one row.
        compiler = queryset.order_by().query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        positions = [i for i, value in enumerate(params) if value == _SENTINEL]
        if len(positions) != 1:
            raise ValueError("a prepared lookup takes exactly one value")
        self.vendor = compiler.connection.vendor
        self.sql, self.params, self.position = sql, list(params), positions[0]
        self.model = compiler.klass_info["model"]
        select = compiler.select
        fields = compiler.klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.attnames = [column[0].target.attname for column in select[self.start:self.end]]
        self.converters = list(compiler.get_converters(
            [column[0] for column in select[:compiler.col_count]]).items())
        self.populators = get_related_populators(compiler.klass_info, select, alias)
        self.statement = None
        if self.vendor == "postgresql":
            self.statement = f"egret_{self.model._meta.db_table}_{name}"
            self.prepare_sql = f"PREPARE {self.statement} AS {_numbered(sql)}"
            self.execute_sql = f"EXECUTE {self.statement}({', '.join(['%s'] * len(params))})"


def converted(row, converters: list, connection) -> list:
    """The row with the ORM's value converters applied, as SQLCompiler.apply_converters does:
    `converters` is [(position, (functions, expression))], the shape
    SQLCompiler.get_converters() gives, and `connection` the one that read the row."""
    row = list(row)
    for position, (functions, expression) in converters:
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row


class PreparedGet:
    """`PreparedGet(lambda value: Model.objects.select_related(...).filter(field=value))`,
    then `.get(value)`: the instance, or `Model.DoesNotExist`, as `QuerySet.get` would.

    The compiled form is shared by every thread: Django gives each thread its own connection
    object, and a gthread worker has hundreds of threads, each of which compiled the lookup
    again when the form was kept per connection."""

    def __init__(self, build: Callable[[object], QuerySet], using: str = "default") -> None:
        self.build = build
        self.alias = using
        self.name = str(next(_names))
        self._compiled: _Compiled | None = None
        # The driver's connections the statement is prepared on (weakly: a connection the pool
        # drops takes its entry with it; a new one prepares again). Kept here, not with the
        # compiled form, which two threads may build at once: the statement is the same.
        self._prepared_on: weakref.WeakSet = weakref.WeakSet()

    def compiled(self) -> _Compiled:
        connection = connections[self.alias]
        compiled = self._compiled
        if compiled is None or compiled.vendor != connection.vendor:
            # Two threads may compile at once; both results are the same.
            compiled = self._compiled = _Compiled(self.build(_SENTINEL), self.alias, self.name)
        return compiled

    def _sql_for(self, compiled: _Compiled, connection) -> str:
        """The SQL to run: on PostgreSQL an EXECUTE of the prepared statement (preparing it
        first on a connection that has not got it), else the query. Called with a cursor open:
        Django's health check and any reconnection have happened, so the driver's connection is
        the one the statement runs on."""
        if compiled.statement is None:
            return compiled.sql
        raw = connection.connection
        if raw not in self._prepared_on:
            with connection.wrap_database_errors:
                raw.execute(compiled.prepare_sql)
            self._prepared_on.add(raw)
        return compiled.execute_sql

    def _forget_stale(self, exc: DatabaseError, compiled: _Compiled, connection) -> bool:
        """After a migration changed a selected column, the statement prepared before it fails
        on that connection (until the pool replaces it): deallocate it, so the next call
        prepares it again, and say whether this call may run the plain query instead. Not in
        a transaction: the failure has aborted it, as any failed query would."""
        if (compiled.statement is None or connection.in_atomic_block
                or getattr(exc.__cause__, "sqlstate", None) not in _STALE_STATEMENT):
            return False
        raw = connection.connection
        self._prepared_on.discard(raw)
        try:
            raw.execute(f"DEALLOCATE {compiled.statement}")
        except Exception:  # already gone
            pass
        return True

    def get(self, value):
        compiled = self.compiled()
        params = list(compiled.params)
        params[compiled.position] = value
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            try:
                cursor.execute(self._sql_for(compiled, connection), params)
            except DatabaseError as exc:
                if not self._forget_stale(exc, compiled, connection):
                    raise
                cursor.execute(compiled.sql, params)
            rows = cursor.fetchmany(2)
        model = compiled.model
        if not rows:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(
                f"get() returned more than one {model._meta.object_name}.")
        row = rows[0]
        if compiled.converters:
            row = converted(row, compiled.converters, connection)
        instance = model.from_db(self.alias, compiled.attnames, row[compiled.start:compiled.end])
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance
