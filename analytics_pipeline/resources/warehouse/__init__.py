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

Modules: ``tables`` (schemas, tables, the rows of a bulk write, the session interface), ``errors``,
``duckdb_engine`` and ``postgres_engine`` (what only one engine does), ``client`` (:class:`Warehouse`),
``resource`` (:class:`WarehouseResource`, its Dagster configuration).
"""

from analytics_pipeline.resources.warehouse.client import Warehouse
from analytics_pipeline.resources.warehouse.errors import (
    MissingDatabaseError,
    TransientWarehouseError,
    WarehouseBusyError,
    WarehouseError,
)
from analytics_pipeline.resources.warehouse.resource import WarehouseResource
from analytics_pipeline.resources.warehouse.tables import SCHEMAS, Column, Rows, ScratchQuery, Session, Table

__all__ = [
    "SCHEMAS",
    "Column",
    "MissingDatabaseError",
    "Rows",
    "ScratchQuery",
    "Session",
    "Table",
    "TransientWarehouseError",
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseError",
    "WarehouseResource",
]
