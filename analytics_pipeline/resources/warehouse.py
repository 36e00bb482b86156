"""One warehouse interface, two engines.

DuckDB (an embedded file) and PostgreSQL differ in how they connect, how they bulk-load (DuckDB scans
an Arrow table in place, PostgreSQL takes ``COPY``) and in their placeholder style. Those differences
live here and nowhere else: assets call :class:`Warehouse` and never branch on the engine.

Data on its way in is prepared in a *scratch* DuckDB (:meth:`Warehouse.scratch`): in memory, within
a memory limit, spilling to a temporary directory. :meth:`Warehouse.replace_rows` writes a
:class:`ScratchQuery`'s rows without holding them in Python: DuckDB attaches the warehouse file to
the scratch connection and inserts with SQL; PostgreSQL takes them in one ``COPY``, fed batch by batch.

SQL handed to :meth:`Warehouse.query` and friends uses ``?`` placeholders and is written in the
dialect both engines share.

A DuckDB file takes one read-write process or many read-only ones, never a mix, and does not wait.
Every connection here therefore takes its turn through :mod:`warehouse_lock`: a writer's
connection (and :meth:`Warehouse.writing`, around a dbt invocation) holds the file exclusively, a
reader (:meth:`Warehouse.reading`: ``export``, ``health``, metrics) shares it for its short read, and
each waits for the other for a bounded time instead of failing. A program outside the pipeline
that holds the file (a BI tool) is waited out the same way, by retrying DuckDB's lock error.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import dagster as dg
import duckdb
import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv

from analytics_pipeline.resources import warehouse_lock
from analytics_pipeline.settings import Settings, get_settings

SCHEMAS = ("raw", "staging", "intermediate", "marts", "forecast", "ops")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
# The scratch DuckDB keeps its tables within this much memory and spills the rest to disk, so a large
# day costs disk, not RAM; rows stream out of it in batches of this many.
SCRATCH_MEMORY_LIMIT = "384MB"
SCRATCH_ROWS_PER_BATCH = 100_000
_ATTACHED = "warehouse"  # the warehouse file's catalog name inside a scratch connection (DuckDB engine)
# A writer waits this long for readers of the DuckDB file (and for a program outside the pipeline
# that holds it) before its step fails with a TransientWarehouseError, which the retry policy retries.
WRITE_WAIT_SECONDS = 120.0
_CONFLICT = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")
log = logging.getLogger("analytics_pipeline.warehouse")


@dataclass(frozen=True)
class ScratchQuery:
    """The rows a query over a scratch connection (:meth:`Warehouse.scratch`) selects."""

    connection: duckdb.DuckDBPyConnection
    sql: str
    params: tuple[Any, ...] = ()
    columns: tuple[str, ...] = ()  # set by :meth:`selecting`: the columns written, in order

    def selecting(self, columns: Sequence[str]) -> ScratchQuery:
        sql = f"select {', '.join(columns)} from ({self.sql})"
        return ScratchQuery(self.connection, sql, self.params, tuple(columns))

    def batches(self) -> pa.RecordBatchReader:
        """The rows as a stream of record batches; it ends when the connection runs another statement."""
        return self.connection.execute(self.sql, list(self.params)).fetch_record_batch(SCRATCH_ROWS_PER_BATCH)


# What a bulk write takes: an Arrow table, or a query over a scratch connection.
Rows = pa.Table | ScratchQuery


class WarehouseError(RuntimeError):
    """The warehouse cannot be used; the message says which setting or command fixes it."""


class TransientWarehouseError(WarehouseError):
    """A failure worth retrying (lock held by another process, connection dropped)."""


class WarehouseBusyError(TransientWarehouseError):
    """The DuckDB file stayed held by someone else for longer than the caller would wait."""


class MissingDatabaseError(WarehouseError):
    """The PostgreSQL server answers but the warehouse database has not been created yet."""


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # a type name both engines accept: varchar, bigint, date, timestamp, ...


@dataclass(frozen=True)
class Table:
    """A warehouse table this package writes (as opposed to tables dbt builds)."""

    name: str  # schema-qualified, e.g. raw.activity_events
    columns: tuple[Column, ...]
    # PostgreSQL b-tree indexes (partition column: window reads and partition replaces stay cheap as
    # history grows). DuckDB's zone maps serve the same purpose without an index.
    indexed_columns: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def ddl(self) -> str:
        body = ",\n  ".join(f"{column.name} {column.sql_type}" for column in self.columns)
        return f"create table if not exists {self.name} (\n  {body}\n)"


def _checked_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid table identifier")
    return name


class Session(Protocol):
    """An open transaction on one engine."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...

    def insert_arrow(self, table: str, data: Rows) -> None: ...


class _DuckDBSession:
    def __init__(self, connection: duckdb.DuckDBPyConnection):
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._connection.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self._connection.execute(sql, list(params)).to_arrow_table()

    def insert_arrow(self, table: str, data: Rows) -> None:
        if isinstance(data, ScratchQuery) and data.connection is self._connection:  # all in SQL
            columns = ", ".join(data.columns)
            statement = f"insert into {_checked_identifier(table)} ({columns}) {data.sql}"
            self._connection.execute(statement, list(data.params))
            return
        if isinstance(data, pa.Table) and data.num_rows == 0:
            return
        rows = data.batches() if isinstance(data, ScratchQuery) else data
        columns = ", ".join(rows.schema.names)
        self._connection.register("_arrow_batch", rows)
        try:
            self._connection.execute(
                f"insert into {_checked_identifier(table)} ({columns}) select {columns} from _arrow_batch"
            )
        finally:
            self._connection.unregister("_arrow_batch")


class _PostgresSession:
    def __init__(self, connection: Any):
        self._connection = connection

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._connection.cursor() as cursor:
            cursor.execute(self._sql(sql), tuple(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with self._connection.cursor() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            names = [description[0] for description in cursor.description]
            rows = cursor.fetchall()
        return (
            pa.Table.from_pylist([dict(zip(names, row, strict=False)) for row in rows])
            if rows
            else (pa.table({name: pa.array([], pa.null()) for name in names}))
        )

    def insert_arrow(self, table: str, data: Rows) -> None:
        batches = (
            data.batches()
            if isinstance(data, ScratchQuery)
            else pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
        )
        columns = ", ".join(batches.schema.names)
        with self._connection.cursor() as cursor:
            # One COPY for the whole stream: the server stores rows while the next batch is prepared.
            cursor.copy_expert(
                f"copy {_checked_identifier(table)} ({columns}) from stdin with (format csv)",
                _CsvStream(batches),
                size=_CSV_READ_BYTES,
            )


_CSV_READ_BYTES = 2**20


class _CsvStream:
    """A readable file of record batches as CSV (no header), each batch written when it is needed."""

    def __init__(self, batches: Iterable[pa.RecordBatch]):
        self._batches = iter(batches)
        self._text = memoryview(b"")
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        while self._at >= len(self._text):
            batch = next(self._batches, None)
            if batch is None:
                return b""
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
            self._text, self._at = buffer.getbuffer(), 0
        end = len(self._text) if size < 0 else self._at + size
        chunk = bytes(self._text[self._at : end])
        self._at = min(end, len(self._text))
        return chunk


def _conflicting_holder(error: duckdb.Error) -> str:
    """Who holds the DuckDB file, from DuckDB's lock error ("Conflicting lock is held in … (PID n)")."""
    conflict = _CONFLICT.search(str(error))
    return f"{conflict['program']} (pid {conflict['pid']})" if conflict else "another process"


def _rollback_quietly(connection: Any) -> None:
    with contextlib.suppress(psycopg2.Error):  # the connection is already gone; the server discards the transaction
        connection.rollback()


class Warehouse:
    """The analytics warehouse behind one small interface."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = settings.warehouse

    # -- connections -------------------------------------------------------------------------

    def describe(self) -> str:
        s = self.settings
        if self.engine == "duckdb":
            return f"DuckDB file {s.duckdb_path}"
        return f"PostgreSQL database {s.pg_database!r} at {s.pg_host}:{s.pg_port} as {s.pg_user!r}"

    def _connect_duckdb(
        self, read_only: bool = False, deadline: float | None = None, progress: warehouse_lock.Progress | None = None
    ) -> duckdb.DuckDBPyConnection:
        """A connection to the DuckDB file; DuckDB's own lock error (a process outside this pipeline
        holds the file) is tried again until ``deadline`` (``time.monotonic()``; default: at once)."""
        path = self.settings.duckdb_path
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._retrying_lock_errors(
            lambda: duckdb.connect(str(path), read_only=read_only), deadline, progress
        )
        # no progress bar: a long query would draw one on the run's (and the daemon's) console
        connection.execute("set TimeZone = 'UTC'; set enable_progress_bar = false")
        return connection

    def _log_wait(self, holder: str, waited: float) -> None:
        log.warning(f"waiting for the DuckDB file {self.settings.duckdb_path}, held by {holder} ({waited:.0f} s)")

    def _retrying_lock_errors(
        self, open_file: Any, deadline: float | None, progress: warehouse_lock.Progress | None = None
    ) -> Any:
        started, reported = time.monotonic(), 0.0
        while True:
            try:
                return open_file()
            except duckdb.IOException as error:
                now = time.monotonic()
                if "lock" not in str(error).lower() or deadline is None or now >= deadline:
                    raise self._duckdb_open_error(error, now - started) from error
                if now - reported >= warehouse_lock.PROGRESS_EVERY_SECONDS:
                    (progress or self._log_wait)(_conflicting_holder(error), now - started)
                    reported = now
                time.sleep(min(warehouse_lock.POLL_SECONDS * 5, max(0.0, deadline - now)))

    @contextmanager
    def _duckdb_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._holding_exclusively() as deadline:
            connection = self._connect_duckdb(deadline=deadline)
            try:
                yield connection
            finally:
                connection.close()

    @contextmanager
    def _holding_exclusively(self, what: str = "") -> Iterator[float]:
        """The DuckDB file held exclusively by this thread (waiting for readers up to
        :data:`WRITE_WAIT_SECONDS`); yields the deadline for waiting out a program outside the pipeline."""
        path = self.settings.duckdb_path
        try:
            with warehouse_lock.hold(
                path, exclusive=True, wait_seconds=WRITE_WAIT_SECONDS, what=what, progress=self._log_wait
            ):
                yield time.monotonic() + WRITE_WAIT_SECONDS
        except warehouse_lock.LockFileError as error:
            raise WarehouseError(str(error)) from None
        except warehouse_lock.LockTimeout as timeout:
            raise WarehouseBusyError(
                f"The DuckDB file {path} stayed held by {timeout.holder} for {timeout.waited:.0f} s; "
                "wait for it to finish or point ANALYTICS_DUCKDB_PATH elsewhere."
            ) from None

    def _duckdb_open_error(self, error: duckdb.Error, waited: float = 0.0) -> WarehouseError:
        path = self.settings.duckdb_path
        if "lock" in str(error).lower():
            return WarehouseBusyError(
                f"The DuckDB file {path} is in use by {_conflicting_holder(error)}"
                + (f" and stayed so for {waited:.0f} s" if waited >= 1 else "")
                + " (one writer at a time); wait for it to finish, close it, or point ANALYTICS_DUCKDB_PATH elsewhere."
            )
        return WarehouseError(f"Cannot open the DuckDB file {path}: {error}. Check ANALYTICS_DUCKDB_PATH.")

    @contextmanager
    def _attached(self, scratch: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """``scratch`` with the warehouse file attached as its default catalog (its temp tables still
        resolve first), detached afterwards."""
        path = self.settings.duckdb_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._holding_exclusively() as deadline:
            self._retrying_lock_errors(
                lambda: scratch.execute(f"attach '{str(path).replace(chr(39), chr(39) * 2)}' as {_ATTACHED}"), deadline
            )
            try:
                scratch.execute(f"use {_ATTACHED}")
                yield scratch
            finally:
                scratch.execute("use memory")
                scratch.execute(f"detach {_ATTACHED}")

    @contextmanager
    def writing(self, what: str = "") -> Iterator[None]:
        """Hold the warehouse for a writer that opens it by itself (the dbt CLI process): readers of
        this pipeline wait until the block ends, and a program outside it that holds the DuckDB file
        is waited out (up to :data:`WRITE_WAIT_SECONDS`) before the block starts. Connections opened
        inside by this thread do not wait. Nothing to do on PostgreSQL."""
        if self.engine != "duckdb":
            yield
            return
        with self._holding_exclusively(what) as deadline:
            self._connect_duckdb(deadline=deadline).close()  # free of outside holders now
            yield

    @contextmanager
    def reading(
        self, wait_seconds: float | None = None, progress: warehouse_lock.Progress | None = None
    ) -> Iterator[Session]:
        """A read-only session for a reader outside any step (``export``, ``health``, metrics).

        On DuckDB it shares the file with other readers and waits, up to ``wait_seconds`` (default
        ``ANALYTICS_READ_WAIT_SECONDS``; ``progress`` hears who it waits for), for a writer to
        finish; it never makes a writer fail. Past the wait it raises :class:`WarehouseBusyError`
        naming the holder. PostgreSQL readers never block writers and need none of this."""
        if self.engine != "duckdb":
            with self.transaction() as session:
                session.execute("set transaction read only")
                yield session
            return
        path = self.settings.duckdb_path
        if not path.exists():
            raise WarehouseError(
                f"The DuckDB file {path} does not exist; load data with "
                "`analytics-pipeline backfill` or fix ANALYTICS_DUCKDB_PATH."
            )
        wait = self.settings.read_wait_seconds if wait_seconds is None else wait_seconds
        try:
            with warehouse_lock.hold(path, exclusive=False, wait_seconds=wait, progress=progress):
                connection = self._connect_duckdb(read_only=True, deadline=time.monotonic() + wait, progress=progress)
                try:
                    yield _DuckDBSession(connection)
                finally:
                    connection.close()
        except warehouse_lock.LockFileError as error:
            raise WarehouseError(str(error)) from None
        except warehouse_lock.LockTimeout as timeout:
            raise WarehouseBusyError(
                f"The DuckDB file {path} is being written by {timeout.holder} and was not free within "
                f"{timeout.waited:.0f} s; try again when it has finished, or wait longer with "
                "ANALYTICS_READ_WAIT_SECONDS."
            ) from None

    @contextmanager
    def scratch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private in-memory DuckDB for preparing data on its way in (the loader validates there),
        within :data:`SCRATCH_MEMORY_LIMIT`, spilling to a temporary directory removed afterwards.
        Its :class:`ScratchQuery` rows are written by :meth:`replace_rows`."""
        with tempfile.TemporaryDirectory(prefix="analytics-pipeline-scratch-") as spill:
            connection = duckdb.connect(config={"memory_limit": SCRATCH_MEMORY_LIMIT, "temp_directory": spill})
            try:
                connection.execute("set TimeZone = 'UTC'; set enable_progress_bar = false")
                yield connection
            finally:
                connection.close()

    def _pg_params(self, database: str, connect_timeout: int = 5) -> dict[str, Any]:
        s = self.settings
        return {
            "host": s.pg_host,
            "port": s.pg_port,
            "user": s.pg_user,
            "password": s.pg_password or None,
            "dbname": database,
            "connect_timeout": connect_timeout,
            "options": "-c timezone=UTC",
        }

    def _connect_postgres(self, database: str | None = None, connect_timeout: int = 5) -> Any:
        s = self.settings
        try:
            return psycopg2.connect(**self._pg_params(database or s.pg_database, connect_timeout))
        except psycopg2.OperationalError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "no answer"
            if "does not exist" in reason:
                raise MissingDatabaseError(
                    f"PostgreSQL database {database or s.pg_database!r} does not exist; run any "
                    "analytics-pipeline command to create it or fix ANALYTICS_PG_DATABASE."
                ) from error
            raise TransientWarehouseError(
                f"Cannot connect to PostgreSQL at {s.pg_host}:{s.pg_port} as {s.pg_user!r} ({reason}); "
                "start the server or fix ANALYTICS_PG_HOST / ANALYTICS_PG_PORT / ANALYTICS_PG_USER / "
                "ANALYTICS_PG_PASSWORD."
            ) from error

    @contextmanager
    def transaction(self, scratch: duckdb.DuckDBPyConnection | None = None) -> Iterator[Session]:
        """One transaction: everything inside commits together or not at all.

        With DuckDB and a ``scratch`` connection, the transaction runs on it with the warehouse
        attached, so :class:`ScratchQuery` rows are inserted by SQL alone.
        """
        if self.engine == "duckdb":
            with self._attached(scratch) if scratch is not None else self._duckdb_connection() as connection:
                connection.execute("begin transaction")
                try:
                    yield _DuckDBSession(connection)
                    connection.execute("commit")
                except BaseException:
                    connection.execute("rollback")
                    raise
        else:
            connection = self._connect_postgres()
            try:
                yield _PostgresSession(connection)
                connection.commit()
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
                _rollback_quietly(connection)
                raise TransientWarehouseError(
                    f"The PostgreSQL connection failed mid-transaction ({str(error).strip()}); nothing was committed."
                ) from error
            except BaseException:
                _rollback_quietly(connection)
                raise
            finally:
                connection.close()

    # -- convenience -------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with self.transaction() as session:
            return session.query(sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.transaction() as session:
            session.execute(sql, params)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        table = self.query(sql, params)
        return table.column(0)[0].as_py() if table.num_rows else None

    def analyze(self, tables: Sequence[Table]) -> None:
        """Refresh PostgreSQL's planner statistics of those of ``tables`` a write changed noticeably.

        The plans of the daily dbt tests and models depend on them, and autovacuum may be off or not
        have caught up with a large load. A table is analyzed when it never was, or when the rows
        changed since are more than autovacuum's default share (50 + 10% of the rows): a backfill's
        days, not one more day on a long history. DuckDB keeps its statistics as it writes.
        """
        if self.engine != "postgres":
            return
        names = [_checked_identifier(table.name) for table in tables]
        with self.transaction() as session:
            stale = (
                session.query(
                    "select c.oid::regclass::text as name from pg_class c "
                    "join pg_namespace n on n.oid = c.relnamespace "
                    "left join pg_stat_user_tables s on s.relid = c.oid "
                    "where n.nspname || '.' || c.relname = any(?) "
                    "and (c.reltuples < 0 or coalesce(s.n_mod_since_analyze, 0) > 50 + 0.1 * c.reltuples)",
                    [names],
                )
                .column("name")
                .to_pylist()
            )
            for name in stale:
                session.execute(f"analyze {_checked_identifier(name)}")

    def table_exists(self, name: str) -> bool:
        schema, table = _checked_identifier(name).split(".")
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                (schema, table),
            )
        )

    def ping(self, connect_timeout: int = 3) -> None:
        """One round trip (``select 1``) on a new connection; raises :class:`WarehouseError` saying
        what to fix. Creates nothing: a missing DuckDB file or database is an error here, and DuckDB
        is opened read-only."""
        if self.engine == "duckdb":
            with self.reading(wait_seconds=connect_timeout) as session:
                session.query("select 1")
            return
        connection = self._connect_postgres(connect_timeout=connect_timeout)
        try:
            with connection.cursor() as cursor:
                cursor.execute("select 1")
                cursor.fetchall()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
            raise TransientWarehouseError(
                f"PostgreSQL at {self.settings.pg_host}:{self.settings.pg_port} dropped the connection "
                f"({str(error).strip()}); check the server."
            ) from error
        finally:
            connection.close()

    # -- set-up ------------------------------------------------------------------------------

    def ensure_ready(self, tables: Sequence[Table] = ()) -> None:
        """Create the database (PostgreSQL), the schemas and ``tables`` when they are missing."""
        if self.engine == "postgres":
            self._ensure_postgres_database()
        with self.transaction() as session:
            for schema in SCHEMAS:
                session.execute(f"create schema if not exists {schema}")
            for table in tables:
                session.execute(table.ddl())
                if self.engine == "postgres":
                    for column in table.indexed_columns:
                        index = f"{table.name.replace('.', '_')}_{column.strip('_')}_idx"
                        session.execute(f"create index if not exists {index} on {table.name} ({column})")

    def _ensure_postgres_database(self) -> None:
        database = self.settings.pg_database
        try:
            self._connect_postgres().close()
            return
        except MissingDatabaseError:
            pass  # create it from the maintenance database
        connection = self._connect_postgres("postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'create database "{database}"')
        except psycopg2.errors.DuplicateDatabase:
            pass
        finally:
            connection.close()

    # -- partitioned writes ------------------------------------------------------------------

    def replace_rows(self, writes: Sequence[tuple[Table, Mapping[str, Any], Rows]]) -> None:
        """For each (table, filter, rows): delete the rows matching ``filter``, insert ``rows``.

        ``filter`` maps a column to the value it must equal, or to a list of values it must be one
        of (the days of a range). All writes share one transaction, so a partition and its rejected
        records are replaced together: re-running a partition changes nothing, and a failure leaves
        the old rows. Rows are matched to the table's columns by name; :class:`ScratchQuery` rows
        all come from one scratch connection.
        """
        scratches = {id(rows.connection): rows.connection for _, _, rows in writes if isinstance(rows, ScratchQuery)}
        if len(scratches) > 1:
            raise ValueError("the rows of one replace_rows() call come from one scratch connection at most")
        with self.transaction(*scratches.values()) as session:
            for table, where, rows in writes:
                clause, params = _filter_clause(where)
                session.execute(f"delete from {table.name} where {clause}", params)
                selected = (
                    rows.selecting(table.column_names)
                    if isinstance(rows, ScratchQuery)
                    else (rows.select(table.column_names))
                )
                session.insert_arrow(table.name, selected)


def _filter_clause(where: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """SQL condition and parameters of a :meth:`Warehouse.replace_rows` filter."""
    conditions, params = [], []
    for column, value in where.items():
        if isinstance(value, list | tuple):
            if not value:
                conditions.append("false")
                continue
            conditions.append(f"{_checked_identifier(column)} in ({', '.join(['?'] * len(value))})")
            params.extend(value)
        else:
            conditions.append(f"{_checked_identifier(column)} = ?")
            params.append(value)
    return " and ".join(conditions) or "true", params


class WarehouseResource(dg.ConfigurableResource):
    """Dagster resource giving assets the warehouse chosen by ``ANALYTICS_WAREHOUSE``."""

    def get_client(self) -> Warehouse:
        return Warehouse(get_settings())
