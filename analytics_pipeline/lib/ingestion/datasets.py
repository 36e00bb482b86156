"""The landing-zone contract (SPEC §4) as data: which fields each dataset has and what makes a
record valid. Validation SQL, raw table DDL and the documentation of the raw tables are all derived
from these declarations, so a new field is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics_pipeline.resources.warehouse import Column, Table

SQL_TYPES = {
    "text": "varchar",
    "int": "bigint",
    "decimal": "numeric(18,4)",
    "timestamp": "timestamp",
    "date": "date",
    "bool": "boolean",
    "json": "varchar",
}


# The largest value of every numeric field. It fits the raw types (bigint, numeric(18,4)) with room, and
# keeps every sum in the marts inside its type: a line's quantity x unit_price is at most 10^18, the
# marts' money columns are numeric(38,4) (below 10^34), so a day or a 30-day window would need more
# than 10^15 lines at the limit to overflow; a day's units (bigint, below 9.2 x 10^18) more than 9 x 10^9.
NUMBER_LIMIT = 1_000_000_000
# Decimals keep this many places (numeric(18,4)); a value with more is rejected, never rounded.
DECIMAL_SCALE = 4
# org_id values the marts and reports use for the whole platform: fct_engagement_rolling and
# fct_retention_cohorts write their platform rows as '__all__', the weekly report folder of the
# platform is 'platform'. A school with such an id would collide with them, so it is rejected.
RESERVED_ORG_IDS = ("__all__", "platform")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # one of SQL_TYPES
    required: bool = False
    minimum: int | None = None  # for int / decimal: the smallest allowed value
    # for int / decimal: the largest allowed value (see NUMBER_LIMIT)
    maximum: int | None = None
    choices: tuple[str, ...] = ()  # allowed values, compared lower-cased
    lower: bool = False  # stored lower-cased
    default: str | None = None  # used when the field is absent or empty
    reserved: tuple[str, ...] = ()  # values (compared lower-cased) the marts use for themselves


@dataclass(frozen=True)
class Dataset:
    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    daily: bool
    # daily datasets: the field whose UTC date must equal the folder date
    partition_field: str | None = None
    # dimensions: the field deciding which version of a key wins
    version_field: str | None = None
    # fields PostgreSQL indexes besides the partition date (lookups a daily run makes across all days)
    indexed: tuple[str, ...] = ()

    @property
    def table(self) -> Table:
        meta = ((Column("_partition_date", "date"),) if self.daily else ()) + (
            Column("_source_file", "varchar"),
            Column("_source_line", "bigint"),
            Column("_loaded_at", "timestamp"),
        )
        columns = tuple(Column(f.name, SQL_TYPES[f.kind]) for f in self.fields) + meta
        indexed = (("_partition_date",) if self.daily else ()) + self.indexed
        return Table(f"raw.{self.name}", columns, indexed_columns=indexed)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


ACTIVITY_EVENTS = Dataset(
    name="activity_events",
    fields=(
        Field("event_id", "text", required=True),
        Field("occurred_at", "timestamp", required=True),
        Field("user_id", "text", required=True),
        Field("org_id", "text", required=True, reserved=RESERVED_ORG_IDS),
        Field("activity_type", "text", required=True, lower=True),
        Field("session_id", "text"),
        Field("request_id", "text"),
        Field("ip_address", "text"),
        Field("user_agent", "text"),
        Field("duration_ms", "int", minimum=0, maximum=NUMBER_LIMIT),
        Field("properties", "json"),
    ),
    key=("event_id",),
    daily=True,
    partition_field="occurred_at",
    # dbt's unique_across_days test looks up the ids a daily run wrote among every day loaded
    indexed=("event_id",),
)

ORDER_LINES = Dataset(
    name="order_lines",
    fields=(
        Field("order_id", "text", required=True),
        Field("line_no", "int", required=True, minimum=1, maximum=NUMBER_LIMIT),
        Field("ordered_at", "timestamp", required=True),
        Field("org_id", "text", required=True, reserved=RESERVED_ORG_IDS),
        Field("user_id", "text"),
        Field("item_id", "text", required=True),
        Field("quantity", "int", required=True, minimum=1, maximum=NUMBER_LIMIT),
        Field("unit_price", "decimal", required=True, minimum=0, maximum=NUMBER_LIMIT),
        Field("unit_cost", "decimal", required=True, minimum=0, maximum=NUMBER_LIMIT),
        Field("currency", "text", default="USD"),
        Field(
            "status",
            "text",
            required=True,
            lower=True,
            choices=("completed", "refunded", "cancelled"),
        ),
    ),
    key=("order_id", "line_no"),
    daily=True,
    partition_field="ordered_at",
)

INVENTORY_SNAPSHOTS = Dataset(
    name="inventory_snapshots",
    fields=(
        Field("snapshot_date", "date", required=True),
        Field("item_id", "text", required=True),
        Field("on_hand", "int", required=True, minimum=0, maximum=NUMBER_LIMIT),
        Field("on_order", "int", minimum=0, maximum=NUMBER_LIMIT),
        Field("reorder_point", "int", minimum=0, maximum=NUMBER_LIMIT),
    ),
    key=("snapshot_date", "item_id"),
    daily=True,
    partition_field="snapshot_date",
)

ORGANIZATIONS = Dataset(
    name="organizations",
    fields=(
        Field("org_id", "text", required=True, reserved=RESERVED_ORG_IDS),
        Field("name", "text"),
        Field("plan", "text", lower=True),
        Field("region", "text", lower=True),
        Field("created_at", "timestamp"),
        Field("updated_at", "timestamp", required=True),
    ),
    key=("org_id",),
    daily=False,
    version_field="updated_at",
)

USERS = Dataset(
    name="users",
    fields=(
        Field("user_id", "text", required=True),
        Field("org_id", "text", required=True, reserved=RESERVED_ORG_IDS),
        Field("role", "text", lower=True, choices=("student", "teacher", "staff", "admin")),
        Field("created_at", "timestamp"),
        Field("updated_at", "timestamp", required=True),
    ),
    key=("user_id",),
    daily=False,
    version_field="updated_at",
)

ITEMS = Dataset(
    name="items",
    fields=(
        Field("item_id", "text", required=True),
        Field("name", "text"),
        Field("category", "text", lower=True),
        Field("unit_cost", "decimal", minimum=0, maximum=NUMBER_LIMIT),
        Field("list_price", "decimal", minimum=0, maximum=NUMBER_LIMIT),
        Field("active", "bool", default="true"),
        Field("updated_at", "timestamp", required=True),
    ),
    key=("item_id",),
    daily=False,
    version_field="updated_at",
)

DAILY_DATASETS = (ACTIVITY_EVENTS, ORDER_LINES, INVENTORY_SNAPSHOTS)
DIMENSIONS = (ORGANIZATIONS, USERS, ITEMS)
ALL_DATASETS = DAILY_DATASETS + DIMENSIONS

REJECTED_RECORDS = Table(
    "raw.rejected_records",
    (
        Column("dataset", "varchar"),
        Column("partition_date", "date"),
        Column("file", "varchar"),
        Column("line_no", "bigint"),
        Column("reason", "varchar"),
        Column("raw_text", "varchar"),
        Column("rejected_at", "timestamp"),
    ),
    indexed_columns=("partition_date",),
)

INGESTED_FILES = Table(
    "raw.ingested_files",
    (
        Column("dataset", "varchar"),
        Column("partition_date", "date"),
        Column("file", "varchar"),
        Column("size_bytes", "bigint"),
        Column("modified_at", "timestamp"),
        Column("lines_read", "bigint"),
        Column("rows_loaded", "bigint"),
        Column("rows_rejected", "bigint"),
        Column("duplicates_dropped", "bigint"),
        Column("file_error", "varchar"),
        Column("loaded_at", "timestamp"),
    ),
)

RAW_TABLES = tuple(dataset.table for dataset in ALL_DATASETS) + (REJECTED_RECORDS, INGESTED_FILES)
