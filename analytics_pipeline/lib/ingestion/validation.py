"""Set-based validation of raw records: SQL decides, for every record of a range of partitions,
whether it is loaded, rejected (and why) or dropped as a duplicate.

The rules come from the :class:`~analytics_pipeline.lib.ingestion.datasets.Dataset` declaration;
the first rule a record breaks is its reason. A :class:`Checker` runs in the loader's scratch DuckDB,
whatever the warehouse engine is: the readers hand it records in batches (of many files and days),
each batch is checked by one statement into the ``_checked`` table (typed values, the reason, and the original line only
for rejected records), and :meth:`Checker.finish` then finds the duplicate keys within each
partition. :meth:`Checker.accepted_query` and :meth:`Checker.rejected_query` select the outcome.
Every record carries its partition (``_partition``: the folder date of its file, null for a
dimension snapshot), so one pass checks the records of many days at once.

The statement works in stages so that no expression is computed twice per record: every text
field is trimmed once (``trimmed``), typed once (``typed``: the ``__typed__<field>`` columns the
rules compare against), and only then are the rules evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from analytics_pipeline.lib.ingestion.datasets import DECIMAL_SCALE, Dataset, Field

# ISO-8601 date-time with an explicit offset or Z (the contract requires one).
_TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)"
# a decimal number as text: digits with an optional point and exponent (JSON writes small and large
# numbers as 4e-05 or 1e+18); NaN and Infinity are not numbers
_DECIMAL_PATTERN = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
# A decimal is checked at a wider type than it is stored in (numeric(18,4)), so a value too large for
# the column is reported as out of range; the bound keeps accepted values far inside the column.
_WIDE_DECIMAL = "decimal(38,4)"
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_TYPED = "__typed__"


def _value(field: Field) -> str:
    """The field's text as the rules see it: trimmed in the ``trimmed`` stage (JSON is kept as given)."""
    return f'trim("{field.name}")' if field.kind == "json" else f'"{field.name}"'


def _trimmed(field: Field) -> str:
    """The field's text without surrounding spaces. ``trim()`` copies every value it is given, so
    only the values that start or end with a space are given to it."""
    name = f'"{field.name}"'
    return f"case when starts_with({name}, ' ') or ends_with({name}, ' ') then trim({name}) else {name} end"


def _typed_column(field: Field) -> str:
    """The field's typed value, computed once per record in the ``typed`` stage."""
    return f'"{_TYPED}{field.name}"'


def _timestamp_text(field: Field) -> str:
    """ISO-8601 text DuckDB can cast: a time without seconds gets ':00', a lower-case 'z' is upper-cased."""
    return (
        f"regexp_replace(upper({_value(field)}), "
        r"'^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})([Z+-])', '\1:00\2')"
    )


def _shown(field: Field) -> str:
    """The offending value as it appears in a reason, cut to a readable length."""
    return f"'''' || left({_value(field)}, 80) || ''''"


def _shown_number(field: Field) -> str:
    """A number in a reason as given, cut to a readable length (it passed the type check)."""
    return f"left({_value(field)}, 80)"


def _typed(field: Field) -> str:
    """Expression turning the field's text into its warehouse type (valid records only)."""
    value = _value(field)
    if field.default is not None:
        value = f"coalesce(nullif({value}, ''), {_quote(field.default)})"
    if field.kind == "int":
        return f"try_cast({value} as bigint)"
    if field.kind == "decimal":
        return f"try_cast({value} as {_WIDE_DECIMAL})"
    if field.kind == "timestamp":
        return f"try_cast(try_cast({_timestamp_text(field)} as timestamptz) as timestamp)"
    if field.kind == "date":
        return f"try_cast({value} as date)"
    if field.kind == "bool":
        return f"case when lower({value}) in {_TRUE} then true when lower({value}) in {_FALSE} then false end"
    if field.kind == "json":
        return f"nullif(\"{field.name}\", '')"
    text = f"nullif({value}, '')"
    return f"lower({text})" if field.lower else text


def _type_error(field: Field) -> str | None:
    """Condition that is true when a present value is not of the field's kind."""
    value = _value(field)
    if field.kind == "int":
        # any number of digits: one too large for bigint has no typed value and fails the range rule
        return f"not regexp_full_match({value}, '[+-]?[0-9]+')"
    # a present value's typed value is null exactly when it does not convert (defaults apply to absent ones)
    if field.kind == "decimal":
        return f"not regexp_full_match({value}, '{_DECIMAL_PATTERN}')"
    if field.kind == "timestamp":
        return f"not regexp_full_match({value}, '{_TIMESTAMP_PATTERN}') or {_typed_column(field)} is null"
    if field.kind == "date":
        return f"not regexp_full_match({value}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') or {_typed_column(field)} is null"
    if field.kind == "bool":
        return f"lower({value}) not in {_TRUE + _FALSE}"
    if field.kind == "json":
        return f'not json_valid("{field.name}")'
    return None


_KIND_NAMES = {
    "int": "an integer",
    "decimal": "a decimal number",
    "timestamp": "an ISO-8601 timestamp with offset or Z",
    "date": "a date (YYYY-MM-DD)",
    "bool": "true or false",
    "json": "valid JSON",
}


def _beyond_scale(field: Field) -> str:
    """Condition that is true when a decimal has more places than are stored (it would be rounded).

    Plain text has a non-zero digit after the kept places; a number in exponent form (how JSON
    writes 4e-05) is compared with its stored value as a double, the precision it was written in."""
    value = _value(field)
    return (
        f"case when contains({value}, 'e') or contains({value}, 'E') "
        f"then try_cast({value} as double) <> cast({_typed_column(field)} as double) "
        f"else regexp_matches({value}, '\\.[0-9]{{{DECIMAL_SCALE}}}[0-9]*[1-9]') end"
    )


def reason_expression(dataset: Dataset) -> str:
    """SQL ``case`` yielding the first rule a record breaks, or null for a valid record.

    It reads the ``typed`` stage of :class:`Checker`'s statement: trimmed text, the ``__typed__``
    columns and ``_partition``, the folder date the record must fall on (null: no such rule).
    """
    present = lambda f: f"nullif({_value(f)}, '') is not null"  # noqa: E731
    rules: list[tuple[str, str]] = [("_error is not null", "_error")]
    # PostgreSQL text cannot hold NUL, and no contract field has a use for it
    any_nul = " or ".join(f'contains("{f.name}", chr(0))' for f in dataset.fields)
    rules.append((any_nul, _quote("a value contains a NUL character")))
    for field in dataset.fields:
        if field.required and field.default is None:
            rules.append((f"not ({present(field)})", _quote(f"missing required field: {field.name}")))
    for field in dataset.fields:
        type_error = _type_error(field)
        if type_error:
            rules.append(
                (
                    f"{present(field)} and ({type_error})",
                    f"{_quote(f'{field.name} is not {_KIND_NAMES[field.kind]}: ')} || {_shown(field)}",
                )
            )
        if field.kind == "decimal":
            rules.append(
                (
                    f"{present(field)} and ({_beyond_scale(field)})",
                    f"{_quote(f'{field.name} has more than {DECIMAL_SCALE} decimal places: ')} || {_shown(field)}",
                )
            )
    for field in dataset.fields:
        # a number that passed the type check but has no typed value is too large for any column
        overflow = f"{present(field)} and {_typed_column(field)} is null"
        if field.minimum is not None:
            rules.append(
                (
                    f"{_typed_column(field)} < {field.minimum} or ({overflow} and starts_with({_value(field)}, '-'))",
                    f"{_quote(f'{field.name} must be >= {field.minimum}, got ')} || {_shown_number(field)}",
                )
            )
        if field.maximum is not None:
            rules.append(
                (
                    f"{_typed_column(field)} > {field.maximum} or ({overflow})",
                    f"{_quote(f'{field.name} must be <= {field.maximum}, got ')} || {_shown_number(field)}",
                )
            )
        if field.choices:
            allowed = ", ".join(_quote(choice) for choice in field.choices)
            rules.append(
                (
                    f"{present(field)} and lower({_value(field)}) not in ({allowed})",
                    f"{_quote(f'unknown {field.name} ')} || {_shown(field)} || "
                    f"{_quote(' (expected one of ' + ', '.join(field.choices) + ')')}",
                )
            )
        if field.reserved:
            reserved = ", ".join(_quote(value) for value in field.reserved)
            rules.append(
                (
                    f"{present(field)} and lower({_value(field)}) in ({reserved})",
                    f"{_quote(f'{field.name} ')} || {_shown(field)} || "
                    f"{_quote(' is reserved for platform-wide rows (reserved: ' + ', '.join(field.reserved) + ')')}",
                )
            )
    if dataset.partition_field:
        field = next(f for f in dataset.fields if f.name == dataset.partition_field)
        as_date = f"cast({_typed_column(field)} as date)"
        rules.append(
            (
                f"{as_date} <> _partition",
                f"{_quote(f'{field.name} ')} || {_shown(field)} || "
                f"' is outside the folder date ' || strftime(_partition, '%Y-%m-%d') || ' (UTC)'",
            )
        )
    branches = "\n".join(f"    when {condition} then {reason}" for condition, reason in rules)
    return f"case\n{branches}\nend"


CHECKED = "_checked"
DUPLICATES = "_duplicates"


@dataclass(frozen=True)
class ValidationResult:
    per_file: dict[str, dict[str, int]]  # file -> lines_read, rows_loaded, rows_rejected, duplicates_dropped


class Checker:
    """Checks the records of one or more partitions as the readers hand them over, then settles
    duplicates within each partition. :meth:`reset` empties it for the next range of partitions."""

    def __init__(self, dataset: Dataset, connection: duckdb.DuckDBPyConnection):
        self.dataset, self.connection = dataset, connection
        trimmed = ",\n                ".join(
            f'"{f.name}"' if f.kind == "json" else f'{_trimmed(f)} as "{f.name}"' for f in dataset.fields
        )
        typed = ",\n                ".join(f"{_typed(f)} as {_typed_column(f)}" for f in dataset.fields)
        stored = ",\n            ".join(f'{_typed_column(f)} as "{f.name}"' for f in dataset.fields)
        self._check = f"""
        with trimmed as (
            select _file, _partition, _line, _raw, _error,
                {trimmed}
            from (__records__)
        ),
        typed as (
            select *,
                {typed}
            from trimmed
        ),
        reasoned as (
            select *, {reason_expression(dataset)} as _reason from typed
        )
        select _file, _partition, _line, _reason,
            case when _reason is not null then _raw end as _raw,
            {stored}
        from reasoned
        """
        self.reset()

    def reset(self) -> None:
        """Forget every record checked so far."""
        self.connection.execute(f"create or replace temp table {CHECKED} as {self._checks(_empty(self.dataset))}")
        self.connection.execute(f"drop table if exists {DUPLICATES}")

    def write(self, records: str, params: Sequence[object]) -> int:
        """Check the records ``records`` (a select in the readers' shape) selects; returns how many."""
        (count,) = self.connection.execute(f"insert into {CHECKED} {self._checks(records)}", list(params)).fetchone()
        return count

    def _checks(self, records: str) -> str:
        return self._check.replace("__records__", records, 1)

    def discard(self, file: str) -> None:
        """Forget what was written of ``file`` (it turned out unreadable)."""
        self.connection.execute(f"delete from {CHECKED} where _file = ?", [file])

    def finish(self) -> ValidationResult:
        """Mark the duplicates (every valid record of a key but the winner, within its partition) and
        count per file."""
        dataset = self.dataset
        by_name = {f.name: f for f in dataset.fields}
        # typed values: "01" and "1" are one integer key; a key is a duplicate only within its partition
        key = ("_partition", *dataset.key)
        keys = ", ".join(f'"{k}"' for k in key)
        partition = ", ".join(f'valid."{k}"' for k in key)
        matched = " and ".join(f'valid."{k}" is not distinct from repeated."{k}"' for k in key)
        if dataset.version_field:
            # dimensions: the latest version of a key wins, later files and lines break ties
            winner_order = f'"{by_name[dataset.version_field].name}" desc, _file desc, _line desc'
        else:
            winner_order = "_file, _line"
        # only keys that occur more than once are ranked: the rest cost one hash aggregate
        self.connection.execute(
            f"""
            create or replace temp table {DUPLICATES} as
            with valid as (select * from {CHECKED} where _reason is null),
            repeated as (select {keys} from valid group by {keys} having count(*) > 1),
            ranked as (
                select _file, _line,
                    row_number() over (partition by {partition} order by {winner_order}) as _rank
                from valid inner join repeated on {matched}
            )
            select _file, _line from ranked where _rank > 1
            """
        )
        counts = self.connection.execute(
            f"""
            with files as (
                select _file, count(*) as lines, count(*) filter (where _reason is not null) as rejected
                from {CHECKED} group by _file
            ),
            duplicates as (select _file, count(*) as duplicates from {DUPLICATES} group by _file)
            select _file, lines, lines - rejected - coalesce(duplicates, 0), rejected, coalesce(duplicates, 0)
            from files left join duplicates using (_file)
            """
        ).fetchall()
        per_file = {
            file: {
                "lines_read": lines,
                "rows_loaded": loaded,
                "rows_rejected": rejected_count,
                "duplicates_dropped": duplicates,
            }
            for file, lines, loaded, rejected_count, duplicates in counts
        }
        return ValidationResult(per_file=per_file)

    def accepted_query(self) -> str:
        """The loaded rows: typed fields, one row per key, with ``_source_file`` and ``_source_line``."""
        # decimals are checked wide and stored as numeric(18,4); accepted values are within NUMBER_LIMIT
        columns = ", ".join(
            f'cast("{f.name}" as decimal(18,{DECIMAL_SCALE})) as "{f.name}"' if f.kind == "decimal" else f'"{f.name}"'
            for f in self.dataset.fields
        )
        # an anti join probes the few duplicates' hash table; ``not exists`` also de-duplicated every
        # (file, line) of the range first
        return (
            f"select {columns}, _partition as _partition_date, _file as _source_file, _line as _source_line "
            f"from {CHECKED} anti join {DUPLICATES} using (_file, _line) where _reason is null"
        )

    @staticmethod
    def rejected_query() -> str:
        """The rejected records: ``partition_date``, ``file``, ``line_no``, ``reason`` and ``raw_text``
        (NUL made printable)."""
        return (
            "select _partition as partition_date, _file as file, _line as line_no, _reason as reason, "
            f"replace(_raw, chr(0), '\ufffd') as raw_text from {CHECKED} where _reason is not null"
        )


def _empty(dataset: Dataset) -> str:
    """A select of no records in the readers' shape: gives ``_checked`` its columns."""
    fields = ", ".join(f'null::varchar as "{f.name}"' for f in dataset.fields)
    return (
        "select null::varchar as _file, null::date as _partition, null::bigint as _line, null::varchar as _raw, "
        "null::varchar as _error, "
        f"{fields} limit 0"
    )
