"""Lookups on the hottest paths with their SQL compiled once per database connection.

Building a `select_related(...).get(...)` costs more CPU in Django's query compiler than the
database spends answering it (docs/benchmarks.md, "Hot path: the quota read"). A
`PreparedGet` compiles its queryset the first time a connection runs it and keeps the SQL, the
row layout and the value converters; each later call only substitutes the looked-up value,
runs the statement and builds the model instances as the ORM would (the same converters, the
same related-object caches). Nothing read from the database is kept between calls: every call
runs the statement, so what it returns is always the committed row.
"""

from __future__ import annotations

import threading
from typing import Callable

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

_SENTINEL = "\x00egret-prepared-value\x00"


class _Compiled:
    def __init__(self, queryset: QuerySet, alias: str) -> None:
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        positions = [i for i, value in enumerate(params) if value == _SENTINEL]
        if len(positions) != 1:
            raise ValueError("a prepared lookup takes exactly one value")
        self.connection = compiler.connection
        self.compiler = compiler
        self.sql, self.params, self.position = sql, list(params), positions[0]
        self.model = compiler.klass_info["model"]
        select = compiler.select
        fields = compiler.klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.attnames = [column[0].target.attname for column in select[self.start:self.end]]
        self.converters = compiler.get_converters(
            [column[0] for column in select[:compiler.col_count]])
        self.populators = get_related_populators(compiler.klass_info, select, alias)


class PreparedGet:
    """`PreparedGet(lambda value: Model.objects.select_related(...).filter(field=value))`,
    then `.get(value)`: the instance, or `Model.DoesNotExist`, as `QuerySet.get` would."""

    def __init__(self, build: Callable[[object], QuerySet], using: str = "default") -> None:
        self.build = build
        self.alias = using
        self.local = threading.local()  # connections are per thread, so are compiled forms

    def compiled(self) -> _Compiled:
        connection = connections[self.alias]
        compiled = getattr(self.local, "compiled", None)
        if compiled is None or compiled.connection is not connection:
            compiled = self.local.compiled = _Compiled(self.build(_SENTINEL), self.alias)
        return compiled

    def get(self, value):
        compiled = self.compiled()
        params = list(compiled.params)
        params[compiled.position] = value
        with compiled.connection.cursor() as cursor:
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
            row = next(compiled.compiler.apply_converters([row], compiled.converters))
        instance = model.from_db(self.alias, compiled.attnames, row[compiled.start:compiled.end])
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance
