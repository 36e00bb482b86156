"""The warehouse's errors: transient ones are retried by the steps' retry policy, the others fail for good."""

from __future__ import annotations


class WarehouseError(RuntimeError):
    """The warehouse cannot be used; the message says which setting or command fixes it."""


class TransientWarehouseError(WarehouseError):
    """A failure worth retrying (lock held by another process, connection dropped)."""


class WarehouseBusyError(TransientWarehouseError):
    """The DuckDB file stayed held by someone else for longer than the caller would wait."""


class MissingDatabaseError(WarehouseError):
    """The PostgreSQL server answers but the warehouse database has not been created yet."""
