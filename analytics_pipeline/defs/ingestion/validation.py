"""Set-based validation of raw records: one SQL statement decides, for every record of a partition,
whether it is loaded, rejected (and why) or dropped as a duplicate.

The rules come from the :class:`~analytics_pipeline.defs.ingestion.datasets.Dataset` declaration;
the first rule a record breaks is its reason. Runs in the loader's own DuckDB connection over the
records the readers staged in ``_records``, whatever the warehouse engine is, and leaves its verdict
in the ``_checked`` table: :func:`accepted_query` and :func:`rejected_query` select from it.

The statement works in stages so that no expression is computed twice per record: every text
field is trimmed once (``trimmed``), typed once (``typed``: the ``__typed__<field>`` columns the
rules compare against), and only then are the rules evaluated. The original line is kept only for
rejected records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from analytics_pipeline.defs.ingestion.datasets import Dataset, Field
from analytics_pipeline.defs.ingestion.readers import RECORDS

# ISO-8601 date-time with an explicit offset or Z (the contract requires one).
_TIMESTAMP_PATTERN = (
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)"
)
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_TYPED = "__typed__"


def _value(field: Field) -> str:
    """The field's text as the rules see it: trimmed in the ``trimmed`` stage (JSON is kept as given)."""
    return f"trim(\"{field.name}\")" if field.kind == "json" else f"\"{field.name}\""


def _typed_column(field: Field) -> str:
    """The field's typed value, computed once per record in the ``typed`` stage."""
    return f"\"{_TYPED}{field.name}\""


def _timestamp_text(field: Field) -> str:
    """ISO-8601 text DuckDB can cast: a time without seconds gets ':00', a lower-case 'z' is upper-cased."""
    return (
        f"regexp_replace(upper({_value(field)}), "
        r"'^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})([Z+-])', '\1:00\2')"
    )


def _shown(field: Field) -> str:
    """The offending value as it appears in a reason, cut to a readable length."""
    return f"'''' || left({_value(field)}, 80) || ''''"


def _typed(field: Field) -> str:
    """Expression turning the field's text into its warehouse type (valid records only)."""
    value = _value(field)
    if field.default is not None:
        value = f"coalesce(nullif({value}, ''), {_quote(field.default)})"
    if field.kind == "int":
        return f"try_cast({value} as bigint)"
    if field.kind == "decimal":
        return f"try_cast({value} as decimal(18,4))"
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
        return f"not regexp_full_match({value}, '[+-]?[0-9]{{1,18}}')"
    # a present value's typed value is null exactly when it does not convert (defaults apply to absent ones)
    if field.kind == "decimal":
        return f"{_typed_column(field)} is null"
    if field.kind == "timestamp":
        return f"not regexp_full_match({value}, '{_TIMESTAMP_PATTERN}') or {_typed_column(field)} is null"
    if field.kind == "date":
        return f"not regexp_full_match({value}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') or {_typed_column(field)} is null"
    if field.kind == "bool":
        return f"lower({value}) not in {_TRUE + _FALSE}"
    if field.kind == "json":
        return f"not json_valid(\"{field.name}\")"
    return None


_KIND_NAMES = {
    "int": "an integer",
    "decimal": "a decimal number",
    "timestamp": "an ISO-8601 timestamp with offset or Z",
    "date": "a date (YYYY-MM-DD)",
    "bool": "true or false",
    "json": "valid JSON",
}


def reason_expression(dataset: Dataset, partition: date | None) -> str:
    """SQL ``case`` yielding the first rule a record breaks, or null for a valid record.

    It reads the ``typed`` stage of :func:`validate`: trimmed text and the ``__typed__`` columns.
    """
    present = lambda f: f"nullif({_value(f)}, '') is not null"  # noqa: E731
    rules: list[tuple[str, str]] = [("_error is not null", "_error")]
    # PostgreSQL text cannot hold NUL, and no contract field has a use for it
    any_nul = " or ".join(f"contains(\"{f.name}\", chr(0))" for f in dataset.fields)
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
    for field in dataset.fields:
        if field.minimum is not None:
            rules.append(
                (
                    f"{_typed_column(field)} < {field.minimum}",
                    f"{_quote(f'{field.name} must be >= {field.minimum}, got ')} || {_value(field)}",
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
    if partition is not None and dataset.partition_field:
        field = next(f for f in dataset.fields if f.name == dataset.partition_field)
        as_date = f"cast({_typed_column(field)} as date)"
        rules.append(
            (
                f"{as_date} <> date '{partition.isoformat()}'",
                f"{_quote(f'{field.name} ')} || {_shown(field)} || "
                f"{_quote(f' is outside the folder date {partition.isoformat()} (UTC)')}",
            )
        )
    branches = "\n".join(f"    when {condition} then {reason}" for condition, reason in rules)
    return f"case\n{branches}\nend"


CHECKED = "_checked"


@dataclass(frozen=True)
class ValidationResult:
    per_file: dict[str, dict[str, int]]  # file -> lines_read, rows_loaded, rows_rejected, duplicates_dropped


def validate(dataset: Dataset, partition: date | None, connection: duckdb.DuckDBPyConnection) -> ValidationResult:
    """Decide every record staged in ``_records`` (which is dropped) into ``_checked``."""
    trimmed = ",\n                    ".join(
        f"\"{f.name}\"" if f.kind == "json" else f"trim(\"{f.name}\") as \"{f.name}\"" for f in dataset.fields
    )
    typed = ",\n                    ".join(f"{_typed(f)} as {_typed_column(f)}" for f in dataset.fields)
    stored = ",\n                ".join(f"{_typed_column(f)} as \"{f.name}\"" for f in dataset.fields)
    by_name = {f.name: f for f in dataset.fields}
    keys = ", ".join(_typed_column(by_name[k]) for k in dataset.key)  # keys and versions compare typed values
    if dataset.version_field:
        # dimensions: the latest version of a key wins, later files and lines break ties
        winner_order = f"{_typed_column(by_name[dataset.version_field])} desc, _file desc, _line desc"
    else:
        winner_order = "_file, _line"
    connection.execute(
        f"""
        create or replace temp table {CHECKED} as
        with trimmed as (
            select _file, _line, _raw, _error,
                {trimmed}
            from {RECORDS}
        ),
        typed as (
            select *,
                {typed}
            from trimmed
        ),
        reasoned as (
            select *, {reason_expression(dataset, partition)} as _reason from typed
        )
        select _file, _line, _reason,
            case when _reason is not null then _raw end as _raw,
            {stored},
            case when _reason is null then
                row_number() over (partition by (_reason is null), {keys} order by {winner_order})
            end as _rank
        from reasoned
        """
    )
    connection.execute(f"drop table {RECORDS}")
    counts = connection.execute(
        f"""
        select _file, count(*), count(*) filter (where _rank = 1),
               count(*) filter (where _reason is not null), count(*) filter (where _rank > 1)
        from {CHECKED} group by _file
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


def accepted_query(dataset: Dataset) -> str:
    """The loaded rows: typed fields, one row per key, with ``_source_file`` and ``_source_line``."""
    columns = ", ".join(f'"{f.name}"' for f in dataset.fields)
    return f"select {columns}, _file as _source_file, _line as _source_line from {CHECKED} where _rank = 1"


def rejected_query() -> str:
    """The rejected records: ``file``, ``line_no``, ``reason`` and ``raw_text`` (NUL made printable)."""
    return (
        "select _file as file, _line as line_no, _reason as reason, replace(_raw, chr(0), '\ufffd') as raw_text "
        f"from {CHECKED} where _reason is not null"
    )
