"""Hot statements run on the driver's own cursor, compiled once per dialect.

Through a session, a SELECT that SQLAlchemy has compiled and cached still costs ~15-20 us of
CPU beyond the driver's own work (the session's and the connection's execution paths, an
execution context and a result object per statement); the driver alone needs ~5 us on SQLite.
A one-record GET runs a few such statements on every request (the caller's partner, the
release terms, the record, the audit append). :class:`PrebuiltSelect` runs a SELECT the way
SQLAlchemy would, minus that path, and :func:`execute_driver_sql` a write already written in
the driver's SQL:

- the SQL text is what SQLAlchemy compiles for the connection's dialect (compiled once per
  dialect), in the same transaction (the session's connection: its ``BEGIN`` has run);
- parameters go through the bound columns' own bind processors, and each result column
  through its type's result processor for that dialect (UTC datetimes, JSON, booleans), so
  the rows hold the values :meth:`Session.execute` would return, as plain tuples;
- a driver error is raised as SQLAlchemy raises it (its ``DBAPIError`` subclass, so an
  ``OperationalError`` is still a 503); on a lost connection the statement (which failed, so
  did nothing) is sent once more through SQLAlchemy, which fails it as a disconnect and
  invalidates the connection and the pool as it always does;
- when cursor-level event listeners are installed (``before_cursor_execute`` and
  ``after_cursor_execute``: tracing, the tests' statement counts), or the driver's parameter
  style is not one of the hub's (sqlite3's ``qmark``, psycopg's ``pyformat``), the statement
  runs through SQLAlchemy instead, so every listener still sees every statement.

An expanding (``IN`` list) parameter must have its value fixed in the statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Dialect, Select, exc
from sqlalchemy.orm import Session

_Processor = Callable[[Any], Any]


@dataclass(slots=True)
class _Compiled:
    sql: str
    #: parameter names in the order the driver takes them (``qmark``), or None (named)
    positions: tuple[str, ...] | None
    #: parameter values fixed in the statement itself (not given per execution)
    fixed: dict[str, Any]
    #: parameters every execution must give
    required: frozenset[str]
    bind_processors: dict[str, _Processor]
    #: (position, processor) of each result column that has one, set on the first execution
    #: (from the driver's column type codes)
    result_processors: tuple[tuple[int, _Processor], ...] | None = None


class PrebuiltSelect:
    """A SELECT run on the driver's cursor (module docstring)."""

    __slots__ = ("statement", "_compiled")

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: WeakKeyDictionary[Dialect, _Compiled | None] = WeakKeyDictionary()

    def rows(self, where: Session | Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row of the statement with ``params``, in the transaction of ``where`` (a
        session is flushed first when it autoflushes, as :meth:`Session.execute` does)."""
        if isinstance(where, Session):
            if where.autoflush:
                where.flush()
            connection = where.connection()
        else:
            connection = where
        dialect = connection.dialect
        try:
            compiled = self._compiled[dialect]
        except KeyError:
            compiled = self._compiled[dialect] = _compile(self.statement, dialect)
        if (
            compiled is None
            or _has_cursor_listeners(connection)
            or not compiled.required <= params.keys()  # SQLAlchemy says which is missing
        ):
            return [tuple(row) for row in connection.execute(self.statement, dict(params))]
        values = {**compiled.fixed, **params}
        for name, process in compiled.bind_processors.items():
            values[name] = process(values[name])
        driver_params: Sequence[Any] | Mapping[str, Any] = (
            values if compiled.positions is None else [values[name] for name in compiled.positions]
        )
        ran = _on_cursor(
            connection,
            compiled.sql,
            driver_params,
            many=False,
            fetch=True,
            describe=compiled.result_processors is None,
        )
        if ran is None:  # the connection was lost: SQLAlchemy's own path handles it
            return [tuple(row) for row in connection.execute(self.statement, dict(params))]
        fetched, description = ran
        processors = compiled.result_processors
        if processors is None:
            processors = compiled.result_processors = _result_processors(
                self.statement, dialect, description
            )
        if not processors:
            return [tuple(row) for row in fetched]
        rows: list[tuple[Any, ...]] = []
        for row in fetched:
            processed = list(row)
            for position, process in processors:
                processed[position] = process(processed[position])
            rows.append(tuple(processed))
        return rows

    def first(
        self, where: Session | Connection, params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = self.rows(where, params)
        return rows[0] if rows else None

    def one(self, where: Session | Connection, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """Exactly one row (SQLAlchemy's ``NoResultFound`` or ``MultipleResultsFound`` else)."""
        rows = self.rows(where, params)
        if not rows:
            raise exc.NoResultFound("No row was found when one was required")
        if len(rows) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found when exactly one was required")
        return rows[0]


def execute_driver_sql(
    connection: Connection,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any] | Sequence[Sequence[Any]],
    *,
    many: bool = False,
) -> None:
    """:meth:`Connection.exec_driver_sql` for a write that returns nothing, on the driver's
    cursor: ``sql`` in the driver's parameter style, ``params`` already through the columns'
    bind processors (a sequence of parameter sets with ``many``). Failures, a lost connection
    and cursor listeners are handled as by :class:`PrebuiltSelect` (a statement that failed did
    nothing, so on a lost connection it is sent once more, through SQLAlchemy)."""
    if (
        _has_cursor_listeners(connection)
        or _on_cursor(connection, sql, params, many=many, fetch=False, describe=False) is None
    ):
        connection.exec_driver_sql(sql, params)


def _has_cursor_listeners(connection: Connection) -> bool:
    dispatch = connection.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def _on_cursor(
    connection: Connection, sql: str, params: Any, *, many: bool, fetch: bool, describe: bool
) -> tuple[list[Any], Any] | None:
    """Run ``sql`` on a cursor of the connection's driver connection: the rows (if ``fetch``)
    and the cursor's description (if ``describe``: psycopg builds it anew on every access);
    None when the connection turned out to be lost. Any other driver error is raised as
    SQLAlchemy raises it (its ``DBAPIError`` subclass)."""
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        rows = cast(list[Any], cursor.fetchall()) if fetch else []
        return rows, (cursor.description if describe else None)
    except dialect.loaded_dbapi.Error as error:
        if dialect.is_disconnect(error, dbapi_connection, cursor):
            return None
        raise exc.DBAPIError.instance(
            sql,
            params,
            error,
            dialect.loaded_dbapi.Error,
            hide_parameters=connection.engine.hide_parameters,
            dialect=dialect,
            ismulti=many,
        ) from error
    finally:
        cursor.close()


def _compile(statement: Select[Any], dialect: Dialect) -> _Compiled | None:
    """The statement's text, parameter order and processors for ``dialect``, as SQLAlchemy
    would send them (its expanded state: ``IN`` lists fixed in the statement rendered, one
    parameter a value); None where the driver's parameter style is not one this module binds
    (SQLAlchemy then runs it)."""
    if dialect.paramstyle not in ("qmark", "pyformat"):
        return None
    compiled = statement.compile(dialect=dialect)
    required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
    late = {bind.key for bind in (*compiled.post_compile_params, *compiled.literal_execute_params)}
    if late & required:
        raise ValueError("a prebuilt statement's expanding parameters must be fixed in it")
    expanded = compiled.construct_expanded_state(dict.fromkeys(required))
    # each parameter's own processor (what SQLAlchemy's execution applies), then those of the
    # expanded IN-list values
    bind_processors: dict[str, _Processor] = {}
    for name, bind in compiled.binds.items():
        if bind in compiled.literal_execute_params:
            continue  # rendered into the text
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind_processors[name] = process
    bind_processors.update(expanded.processors)
    positions = None
    if dialect.paramstyle == "qmark":
        positions = tuple(expanded.positiontup or ())
    return _Compiled(
        sql=expanded.statement,
        positions=positions,
        fixed={k: v for k, v in expanded.parameters.items() if k not in required},
        required=required,
        bind_processors={
            name: process
            for name, process in bind_processors.items()
            if name in expanded.parameters
        },
    )


def _result_processors(
    statement: Select[Any], dialect: Dialect, description: Sequence[Sequence[Any]] | None
) -> tuple[tuple[int, _Processor], ...]:
    """Each result column's processor for ``dialect`` (SQLAlchemy's, given the driver's type
    code for the column), by position; columns without one are left out."""
    columns = statement.selected_columns
    if description is None or len(description) != len(columns):
        raise ValueError("the driver returned other columns than the statement selects")
    processors: list[tuple[int, _Processor]] = []
    for position, (column, described) in enumerate(zip(columns, description, strict=True)):
        process = column.type.dialect_impl(dialect).result_processor(dialect, described[1])
        if process is not None:
            processors.append((position, process))
    return tuple(processors)
