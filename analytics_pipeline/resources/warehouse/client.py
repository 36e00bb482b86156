"""The warehouse client assets call (:class:`Warehouse`); ``resource.py`` is the Dagster resource that
configures it."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb
import psycopg2
import psycopg2.errors
import pyarrow as pa

from analytics_pipeline.resources import warehouse_lock
from analytics_pipeline.resources.warehouse.duckdb_engine import (
    _ATTACHED,
    WRITE_WAIT_SECONDS,
    _conflicting_holder,
    _DuckDBSession,
)
from analytics_pipeline.resources.warehouse.errors import (
    MissingDatabaseError,
    TransientWarehouseError,
    WarehouseBusyError,
    WarehouseError,
)
from analytics_pipeline.resources.warehouse.postgres_engine import _PostgresSession, _rollback_quietly
from analytics_pipeline.resources.warehouse.tables import (
    SCHEMAS,
    SCRATCH_MEMORY_LIMIT,
    Rows,
    ScratchQuery,
    Session,
    Table,
    _checked_identifier,
    _filter_clause,
)
from analytics_pipeline.settings import WAREHOUSES, SettingsError, resolved

log = logging.getLogger("analytics_pipeline.warehouse")


class WarehouseConfig(Protocol):
    """Where the warehouse is: :class:`~analytics_pipeline.resources.warehouse.WarehouseResource`
    (in Dagster) or :class:`~analytics_pipeline.settings.Settings` (the CLI) describe it alike."""

    @property
    def engine(self) -> str: ...
    @property
    def duckdb_path(self) -> Path | str: ...
    @property
    def pg_host(self) -> str: ...
    @property
    def pg_port(self) -> int: ...
    @property
    def pg_user(self) -> str: ...
    @property
    def pg_password(self) -> str: ...
    @property
    def pg_database(self) -> str: ...
    @property
    def read_wait_seconds(self) -> float: ...


class Warehouse:
    """The analytics warehouse behind one small interface."""

    def __init__(self, config: WarehouseConfig):
        if config.engine not in WAREHOUSES:
            raise SettingsError(f"warehouse engine {config.engine!r} is not supported; use 'duckdb' or 'postgres'.")
        self.engine = config.engine
        self.duckdb_path = Path(config.duckdb_path)
        self.pg_host, self.pg_port, self.pg_user = config.pg_host, config.pg_port, config.pg_user
        self.pg_password, self.pg_database = resolved(config.pg_password), config.pg_database
        self.read_wait_seconds = config.read_wait_seconds

    # -- connections -------------------------------------------------------------------------

    def describe(self) -> str:
        if self.engine == "duckdb":
            return f"DuckDB file {self.duckdb_path}"
        return f"PostgreSQL database {self.pg_database!r} at {self.pg_host}:{self.pg_port} as {self.pg_user!r}"

    def _connect_duckdb(
        self, read_only: bool = False, deadline: float | None = None, progress: warehouse_lock.Progress | None = None
    ) -> duckdb.DuckDBPyConnection:
        """A connection to the DuckDB file; DuckDB's own lock error (a process outside this pipeline
        holds the file) is tried again until ``deadline`` (``time.monotonic()``; default: at once)."""
        path = self.duckdb_path
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._retrying_lock_errors(
            lambda: duckdb.connect(str(path), read_only=read_only), deadline, progress
        )
        # no progress bar: a long query would draw one on the run's (and the daemon's) console
        connection.execute("set TimeZone = 'UTC'; set enable_progress_bar = false")
        return connection

    def _log_wait(self, holder: str, waited: float) -> None:
        log.warning(f"waiting for the DuckDB file {self.duckdb_path}, held by {holder} ({waited:.0f} s)")

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
        path = self.duckdb_path
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
        path = self.duckdb_path
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
        path = self.duckdb_path
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
        path = self.duckdb_path
        if not path.exists():
            raise WarehouseError(
                f"The DuckDB file {path} does not exist; load data with "
                "`analytics-pipeline backfill` or fix ANALYTICS_DUCKDB_PATH."
            )
        wait = self.read_wait_seconds if wait_seconds is None else wait_seconds
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
        return {
            "host": self.pg_host,
            "port": self.pg_port,
            "user": self.pg_user,
            "password": self.pg_password or None,
            "dbname": database,
            "connect_timeout": connect_timeout,
            "options": "-c timezone=UTC",
        }

    def _connect_postgres(self, database: str | None = None, connect_timeout: int = 5) -> Any:
        try:
            return psycopg2.connect(**self._pg_params(database or self.pg_database, connect_timeout))
        except psycopg2.OperationalError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "no answer"
            if "does not exist" in reason:
                raise MissingDatabaseError(
                    f"PostgreSQL database {database or self.pg_database!r} does not exist; run any "
                    "analytics-pipeline command to create it or fix ANALYTICS_PG_DATABASE."
                ) from error
            raise TransientWarehouseError(
                f"Cannot connect to PostgreSQL at {self.pg_host}:{self.pg_port} as {self.pg_user!r} ({reason}); "
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
                f"PostgreSQL at {self.pg_host}:{self.pg_port} dropped the connection "
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
        database = self.pg_database
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
