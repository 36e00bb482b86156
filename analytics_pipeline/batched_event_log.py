"""The embedded instance's event log, written in batches: Dagster's SQLite event-log storage, made
to store a batch of events in one transaction per database and to keep its engines.

The gap (dagster-io/dagster#18789, #19829): Dagster's OSS ``SqliteEventLogStorage`` opens a new
SQLAlchemy engine for every write, so every statement is compiled again, inspects the schema of the
index database for every asset event, and writes every event on its own, even when Dagster hands
it a batch (``store_event_batch``, used for a run's planned events when ``DAGSTER_EVENT_BATCH_SIZE``
is set). A run over a year of daily partitions writes one planned event and one materialization
per asset and day: ~20 ms each, minutes of bookkeeping before and during the work.

This storage is Dagster's own (same files, same schema, same queries; an instance can switch to it
and back), with these changes:

* one engine per database file, kept (at most :data:`ENGINES_KEPT`), with its connections: statements
  are compiled once, and the file is not closed after each write (closing the last connection of a
  WAL database checkpoints it); a forked process drops its parent's connections unused;
* the index database's schema is inspected once per process, not once per event;
* a batch of events is written in one transaction on the run's database and one on the index
  database, instead of two transactions per event;
* a planned check evaluation over many partitions is serialized once, not once per partition
  (Dagster's ``_store_asset_check_evaluation_planned`` serializes the same event for every row it
  writes: 62 checks x 1,095 days took 15 s of a three-year backfill before its first step);
* writes in SQLite's ``synchronous=NORMAL`` mode: with the WAL journal Dagster uses, a commit no
  longer waits for the disk, and a crash of any process loses nothing; a power cut may lose the last
  commits, never the database's consistency. Production uses PostgreSQL (deploy/).

It sets ``DAGSTER_EVENT_BATCH_SIZE`` (when unset) in every process that opens the instance (the CLI,
the UI, the daemon, run workers), since Dagster only hands batches to the storage when it is set.

``tests/test_batched_event_log.py`` checks the storage against Dagster's on the same events, so a
Dagster release that changes the storage's internals surfaces there.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster import _check as check
from dagster._config import Field, StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# events Dagster buffers before handing them to store_event_batch (a run's planned events)
EVENT_BATCH_SIZE = "1000"
# engines kept open at once: the index database and the latest runs' databases
ENGINES_KEPT = 32


_STORAGES: weakref.WeakSet[BatchedSqliteEventLogStorage] = weakref.WeakSet()


def _forget_engines_in_child() -> None:
    """A forked child must not use its parent's open SQLite connections: drop them unclosed."""
    for storage in list(_STORAGES):
        storage._engines_lock = threading.Lock()
        for engine in storage._engines.values():
            engine.dispose(close=False)
        storage._engines.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event-log storage (same files, same schema), with kept engines and batched
    writes (see the module's docstring). Configured in the project's ``dagster.yaml``."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables: set[str] = set()
        self._asset_key_index_cols = False
        self._pending_inst_data = inst_data
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
        if base_dir:
            self._open(base_dir)

    def _open(self, base_dir: str) -> None:
        super().__init__(base_dir, self._pending_inst_data)
        _STORAGES.add(self)

    def register_instance(self, instance: Any) -> None:
        # Without ``base_dir``, the databases are where Dagster's default storage keeps them for this
        # instance: ``<instance home>/history/runs``. The instance says where its home is only here
        # (the first thing it does with its event log, before any read or write).
        if not hasattr(self, "_base_dir"):
            self._open(os.path.join(instance.root_directory, "history", "runs"))
        super().register_instance(instance)

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        # ``base_dir`` as Dagster's storage has it; by default the instance's own (see register_instance)
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchedSqliteEventLogStorage:
        return cls(config_value.get("base_dir"), inst_data=inst_data)

    # ------------------------------------------------------------------ connections

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            db.event.listen(engine, "connect", _pragmas)
            self._engines[shard] = engine
            while len(self._engines) > ENGINES_KEPT:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            check.str_param(shard, "shard")
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # tables are only ever added (by Dagster's migrations), so a table seen once stays
        if table_name in self._tables:
            return True
        if super().has_table(table_name):
            self._tables.add(table_name)
            return True
        return False

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        if not self._asset_key_index_cols:
            self._asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols

    def dispose(self) -> None:
        super().dispose()
        with self._engines_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    # ------------------------------------------------------------------ writes

    def store_event(self, event: EventLogEntry) -> None:
        self.store_event_batch([event])

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store ``events`` as Dagster's storage stores each of them, in one transaction on each run's
        database and one on the index database (Dagster's: two per event)."""
        check.sequence_param(events, "events", EventLogEntry)
        if not events:
            return
        rows = [self._event_to_row(event) for event in events]  # serialized once, for both databases
        by_run: dict[str, list[dict[str, Any]]] = {}
        for event, row in zip(events, rows, strict=True):
            by_run.setdefault(event.run_id, []).append(row)
        for run_id, run_rows in by_run.items():
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), run_rows)

        def of(types: Any) -> list[tuple[EventLogEntry, dict[str, Any]]]:
            return [
                (e, r)
                for e, r in zip(events, rows, strict=True)
                if e.is_dagster_event and e.dagster_event_type in types
            ]

        assets, checks, statuses = of(ASSET_EVENTS), of(ASSET_CHECK_EVENTS), of(EVENT_TYPE_TO_PIPELINE_RUN_STATUS)
        check_ids: list[int] = []
        if assets or checks or statuses:
            with self.index_transaction() as conn:
                # mirrored in the cross-run index database, each with its own storage id
                asset_ids = self._insert_returning_ids(conn, [row for _, row in assets])
                if assets:
                    asset_events = [event for event, _ in assets]
                    self._store_asset_event_tags(conn, asset_events, asset_ids)
                    self._store_asset_entries(conn, asset_events, asset_ids)
                check_ids = self._insert_returning_ids(conn, [row for _, row in checks])
                if statuses:
                    conn.execute(SqlEventLogStorageTable.insert(), [row for _, row in statuses])
        for (event, _), event_id in zip(checks, check_ids, strict=True):
            self.store_asset_check_event(event, event_id)

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's rows (one per planned partition), with the event serialized once for all of them."""
        planned = check.not_none(event.dagster_event).event_specific_data
        subset = planned.partitions_subset
        partition_keys = subset.get_partition_keys() if subset else [None]
        row = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**row, "partition": key} for key in partition_keys])

    @staticmethod
    def _insert_returning_ids(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        statement = SqlEventLogStorageTable.insert().returning(
            SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
        )
        return [row.id for row in conn.execute(statement, rows)]

    def _store_asset_entries(self, conn: Connection, events: Sequence[EventLogEntry], event_ids: Sequence[int]) -> None:
        """The asset-key rows after ``events``, as Dagster's ``_store_asset_event`` leaves them one event
        at a time: each event sets some columns of its key's row, later events win, so the columns
        of a key's events merged in order are written once per key."""
        index_cols = self._has_asset_key_index_cols_on_connection(conn)
        # the events of one type set the same columns, so only each key's last event of each type
        # counts (each materialization's values serialize the whole event: most of a batch)
        last: dict[tuple[str, str], int] = {}
        for position, event in enumerate(events):
            if event.dagster_event and event.dagster_event.asset_key:
                last[(event.dagster_event.asset_key.to_string(), event.dagster_event.event_type_value)] = position
        merged: dict[str, dict[str, Any]] = {}
        for position in sorted(last.values()):
            event = events[position]
            values = self._get_asset_entry_values(event, event_ids[position], index_cols)
            if values:
                merged.setdefault(event.dagster_event.asset_key.to_string(), {}).update(values)
        for asset_key, values in merged.items():
            try:
                with conn.begin_nested():
                    conn.execute(AssetKeyTable.insert().values(asset_key=asset_key, **values))
            except db.exc.IntegrityError:
                conn.execute(AssetKeyTable.update().values(**values).where(AssetKeyTable.c.asset_key == asset_key))
