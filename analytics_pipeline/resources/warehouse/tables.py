"""What the warehouse holds and takes: schemas, tables and their DDL, the rows of a bulk write, the session interface."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb
import pyarrow as pa

SCHEMAS = ("raw", "staging", "intermediate", "marts", "forecast", "ops")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
# The scratch DuckDB keeps its tables within this much memory and spills the rest to disk, so a large
# day costs disk, not RAM; rows stream out of it in batches of this many.
SCRATCH_MEMORY_LIMIT = "384MB"
SCRATCH_ROWS_PER_BATCH = 100_000


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
