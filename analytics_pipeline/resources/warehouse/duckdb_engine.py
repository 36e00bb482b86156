"""What only the DuckDB engine does: sessions on the file, the lock conflict it reports, the scratch attachment."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from analytics_pipeline.resources.warehouse.tables import Rows, ScratchQuery, _checked_identifier

_ATTACHED = "warehouse"  # the warehouse file's catalog name inside a scratch connection (DuckDB engine)
# A writer waits this long for readers of the DuckDB file (and for a program outside the pipeline
# that holds it) before its step fails with a TransientWarehouseError, which the retry policy retries.
WRITE_WAIT_SECONDS = 120.0
_CONFLICT = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


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


def _conflicting_holder(error: duckdb.Error) -> str:
    """Who holds the DuckDB file, from DuckDB's lock error ("Conflicting lock is held in … (PID n)")."""
    conflict = _CONFLICT.search(str(error))
    return f"{conflict['program']} (pid {conflict['pid']})" if conflict else "another process"
