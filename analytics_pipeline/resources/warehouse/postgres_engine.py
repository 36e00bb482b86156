"""What only the PostgreSQL engine does: ``%s`` placeholders, ``COPY`` fed batch by batch, quiet rollbacks."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg2
import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv

from analytics_pipeline.resources.warehouse.tables import Rows, ScratchQuery, _checked_identifier


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


def _rollback_quietly(connection: Any) -> None:
    with contextlib.suppress(psycopg2.Error):  # the connection is already gone; the server discards the transaction
        connection.rollback()
