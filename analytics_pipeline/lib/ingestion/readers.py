"""Landing-zone readers: hand every record of a file, whatever its format, to a *writer* as the
rows of a SQL ``select`` over the loader's scratch DuckDB, in the common raw-record shape:

    _file  (varchar) the file's path relative to the landing root
    _partition (date) the partition the file was found in (its folder date; null for a dimension)
    _line  (bigint)  1-based line number in the file (row number for Parquet)
    _raw   (varchar) the record's original text, kept for ``raw.rejected_records``
    _error (varchar) why the record could not even be parsed, else null
    <field> (varchar) one column per contract field, as text; null when absent

The writer (validation's :meth:`~analytics_pipeline.lib.ingestion.validation.Checker.write`)
checks them as they come, so a large day is never held whole: JSON Lines files are read in blocks
of whole lines, Parquet files in batches of rows. :class:`RecordBatches` gathers the blocks of
JSON Lines and CSV files, of many files and days, into statements of about :data:`BATCH_BYTES`:
planning the validation statement costs about as much as checking 2,000 records, which a day of
small files paid per file.

Every file is opened by its exact name from Python, in a local folder or an object store
(:mod:`~analytics_pipeline.lib.ingestion.landing_zone`); never handed to DuckDB as a path, which
DuckDB would read as a glob pattern: ``x[1].parquet`` or ``snap-*.parquet``.

Files are split and parsed by Arrow and DuckDB, never line by line in Python. A file that cannot be
read at all (bad gzip, not UTF-8, not the format its name says, empty) raises
:class:`UnreadableFile` with a reason, possibly after some of its blocks were written; the caller
discards them, rejects the file whole and carries on.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analytics_pipeline.lib.ingestion.landing_zone import FORMATS, LandingFile


class UnreadableFile(Exception):
    """The whole file is unusable; ``str(error)`` is the reason recorded for it."""


SKIPPED = "skipped: "  # how the ledger's file_error marks an entry that was not read on purpose
# A row of raw.ingested_files that is an unreadable file (rejected whole), not one skipped on purpose.
UNREADABLE_FILE_SQL = f"(file_error is not null and file_error not like '{SKIPPED}%')"


# JSON Lines are parsed in blocks of about this many bytes (whole lines), so the text held in Python
# at a time stays small whatever the file's size.
BLOCK_BYTES = 8 * 2**20
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark some writers put first
# Records go to DuckDB as Arrow batches of this many rows: DuckDB scans an Arrow table one batch per
# thread, so a block in one batch would be checked on one core.
SCAN_BATCH_ROWS = 2048

# Takes a select of raw records (SQL and its parameters) and keeps them; returns how many it kept.
Writer = Callable[[str, Sequence[object]], int]
# JSON Lines and CSV records wait for a statement until about this much text of them waits.
BATCH_BYTES = 16 * 2**20


def read_records(file: LandingFile, partition: date | None, batches: RecordBatches) -> None:
    """Give every record of ``file`` (found in ``partition``) to ``batches``."""
    if file.refused:
        raise UnreadableFile(file.refused)
    kind = file.format
    if kind is None:
        raise UnreadableFile(f"unsupported file type {file.name!r}; expected one of " + ", ".join(sorted(FORMATS)))
    try:
        if kind == "parquet":
            _read_parquet(file, partition, batches)
        elif kind == "jsonl":
            _read_jsonl(file, partition, batches)
        else:
            batches.add("csv", file.relative, partition, _read_csv(*_decoded_text(file), batches.fields))
    except _SHAPE_ERRORS as error:
        raise UnreadableFile(_shape_reason(kind, error)) from error


def _shape_reason(kind: str, error: Exception) -> str:
    """Why a file is rejected whole when its content raised ``error``: a shape no rule foresaw must
    still cost only this file, never the partition."""
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"not a readable {kind} file ({detail})"


class RecordBatches:
    """Hands the records of many files to ``write`` in few statements.

    JSON Lines blocks and CSV files wait, tagged with their file and partition, until about
    :data:`BATCH_BYTES` of their text waits or :meth:`flush` is called; Parquet records go at once
    (each file has column types of its own). When a statement fails on the content of some file,
    each of its files is checked alone, and those that still fail are named in :attr:`failed`
    (file -> reason): the caller rejects them whole, as it does a file that raised
    :class:`UnreadableFile` while being read.
    """

    def __init__(self, connection: duckdb.DuckDBPyConnection, fields: Sequence[str], write: Writer):
        self.connection, self.fields, self._write = connection, list(fields), write
        self._statements = {"jsonl": _jsonl_statement(fields), "csv": _csv_statement(fields)}
        self._waiting: dict[str, list[tuple[str, pa.Table]]] = {kind: [] for kind in self._statements}
        self._waiting_bytes = 0
        self.failed: dict[str, str] = {}
        self.records = 0  # records handed over (waiting or written) since the owner last set it to 0

    def add(self, kind: str, file: str, partition: date | None, records: pa.Table) -> None:
        """Queue ``records`` of ``file`` (``kind``: "jsonl" lines or "csv" rows in the raw-record shape)."""
        records = records.add_column(0, "_file", pa.repeat(pa.scalar(file, pa.string()), len(records)))
        records = records.add_column(1, "_partition", pa.repeat(pa.scalar(partition, pa.date32()), len(records)))
        self._waiting[kind].append((file, records))
        self._waiting_bytes += records.nbytes
        self.records += len(records)
        if self._waiting_bytes >= BATCH_BYTES:
            self.flush()

    def write_now(self, statement: str, params: Sequence[object]) -> None:
        """Write a select of raw records at once (it reads a table registered only for it)."""
        self.records += self._write(statement, params)

    def discard(self, file: str) -> None:
        """Forget the waiting records of ``file``."""
        for kind, waiting in self._waiting.items():
            self._waiting[kind] = [(name, table) for name, table in waiting if name != file]
        self._waiting_bytes = sum(table.nbytes for waiting in self._waiting.values() for _, table in waiting)

    def flush(self) -> None:
        """Write every waiting record."""
        for kind, waiting in self._waiting.items():
            if waiting:
                self._write_batch(kind, waiting)
        self._waiting = {kind: [] for kind in self._statements}
        self._waiting_bytes = 0

    def _write_batch(self, kind: str, waiting: list[tuple[str, pa.Table]]) -> None:
        try:
            self._write_tables(kind, [table for _, table in waiting])
            return
        except _SHAPE_ERRORS as error:
            if len({file for file, _ in waiting}) == 1:
                self.failed[waiting[0][0]] = _shape_reason(kind, error)
                return
        for file in dict.fromkeys(file for file, _ in waiting):
            try:
                self._write_tables(kind, [table for name, table in waiting if name == file])
            except _SHAPE_ERRORS as error:
                self.failed[file] = _shape_reason(kind, error)

    def _write_tables(self, kind: str, tables: list[pa.Table]) -> None:
        self.connection.register("_waiting_records", _in_scan_batches(pa.concat_tables(tables)))
        try:
            self._write(self._statements[kind], [])
        finally:
            self.connection.unregister("_waiting_records")


# Errors reading a file's content can raise (Arrow and DuckDB on data they cannot take): they reject
# the file. Errors of the machine (out of memory, disk full, interrupted) still fail the partition.
_SHAPE_ERRORS = (
    pa.ArrowException,
    KeyError,
    ValueError,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.NotImplementedException,
    duckdb.BinderException,
)


def _csv_statement(fields: Sequence[str]) -> str:
    columns = ", ".join(["_file", "_partition", "_line", "_raw", "_error", *(f'"{name}"' for name in fields)])
    return f"select {columns} from _waiting_records"


def _in_scan_batches(records: pa.Table) -> pa.Table:
    """``records`` in batches of :data:`SCAN_BATCH_ROWS`, so every thread of the scratch connection scans some."""
    return pa.Table.from_batches(records.to_batches(max_chunksize=SCAN_BATCH_ROWS), records.schema)


def _decoded_text(file: LandingFile) -> tuple[bytes, pa.Array]:
    """The file's bytes (decompressed) and the same bytes as a one-element UTF-8 string array."""
    data = file.read_bytes()
    if file.compressed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableFile(f"not a valid gzip file ({error})") from None
    data = data.removeprefix(_BOM)
    if not data.strip():
        raise UnreadableFile("empty file")
    return data, _as_text(data)


def _as_text(data: bytes) -> pa.Array:
    """``data`` as a one-element UTF-8 string array, built on the bytes without copying them."""
    try:
        offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
        binary = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
        return binary.cast(pa.large_string())  # the cast checks UTF-8
    except pa.ArrowInvalid:
        raise UnreadableFile("not UTF-8 text") from None


def _line_blocks(file: LandingFile) -> Iterator[bytes]:
    """The file's bytes (decompressed, without a byte-order mark) in blocks that end at a line end."""
    rest, first = b"", True
    try:
        with file.open() as raw, gzip.GzipFile(fileobj=raw) if file.compressed else raw as stream:
            while block := stream.read(BLOCK_BYTES):
                if first:
                    block = block.removeprefix(_BOM)
                first = False
                end = block.rfind(b"\n") + 1
                if not end:  # a line longer than a block
                    rest += block
                    continue
                yield rest + memoryview(block)[:end]
                rest = block[end:]
    except (OSError, EOFError, zlib.error) as error:
        if not file.compressed:
            raise
        raise UnreadableFile(f"not a valid gzip file ({error})") from None
    if rest:
        yield rest


def _lines(text: pa.Array) -> pa.Array:
    lines = pc.split_pattern(text, "\n").flatten()
    if len(lines) and lines[-1].as_py() == "":
        lines = lines.slice(0, len(lines) - 1)  # the newline ending the last line
    return pc.utf8_rtrim(lines, characters="\r")


# DuckDB's JSON reader accepts NaN and Infinity (any case, and "inf"), which JSON does not have: such
# a token outside a string (the prefix steps over whole strings and whatever lies between them).
_NON_FINITE = r'^([^"]|"([^"\\]|\\.)*")*(?i:nan|inf)'


def _repeated_field(fields: Sequence[str]) -> str:
    """A cheap test for a record that may repeat a contract field: the field's key text occurs twice.

    It also matches a nested key or a value with that text; the record's keys are then compared
    exactly, so only a key repeated at the top level of the record rejects it."""
    return "|".join(f'"{name}".*"{name}"' for name in fields)


def _jsonl_statement(fields: Sequence[str]) -> str:
    """The select turning waiting JSON Lines lines (``_file``, ``_partition``, ``_line``, ``_raw``)
    into the raw-record shape."""
    struct = json.dumps({name: "VARCHAR" for name in fields})
    projections = ", ".join(f'_parsed."{name}" as "{name}"' for name in fields)
    suspect = f"{_NON_FINITE}|{_repeated_field(fields)}"
    # Valid JSON whose first character (after JSON whitespace) is '{' is an object: cheaper than
    # json_type(), which builds the whole document. A blank line is never valid JSON, so only the
    # invalid lines are trimmed (trimming copies the line). NaN / Infinity and a repeated key (DuckDB
    # keeps the first value) are found by one regular expression over the valid objects; only the few
    # lines it matches are looked at closely. Row order does not matter.
    return f"""
        with checked as (
            select
                _file,
                _partition,
                _line,
                _raw,
                json_valid(_raw) as _valid,
                regexp_matches(_raw, '^[ \\t\\r\\n]*[{{]') as _object
            from _waiting_records
        ),
        suspects as (
            select *, _valid and _object and regexp_matches(_raw, '{suspect}') as _suspect
            from checked
        ),
        looked_at as (
            select
                *,
                case when _suspect then regexp_matches(_raw, '{_NON_FINITE}') end as _non_finite,
                case when _suspect
                    then list_filter(json_keys(_raw), lambda key, i: list_position(json_keys(_raw), key) < i)[1]
                end as _repeated_key
            from suspects
        ),
        parsed as (
            select
                _file,
                _partition,
                _line,
                _raw,
                case
                    when not _valid then case when trim(_raw) = '' then 'blank line' else 'invalid JSON' end
                    when not _object then 'not a JSON object'
                    when _non_finite then 'invalid JSON: NaN and Infinity are not JSON numbers'
                    when _repeated_key is not null
                        then 'the key "' || left(_repeated_key, 80) || '" occurs twice in the record'
                end as _error,
                case when _valid and _object then from_json(_raw, '{struct}') end as _parsed
            from looked_at
        )
        select _file, _partition, _line, _raw, _error, {projections} from parsed
    """


def _read_jsonl(file: LandingFile, partition: date | None, batches: RecordBatches) -> None:
    lines_before, anything = 0, False
    for block in _line_blocks(file):
        anything = anything or bool(block.strip())
        lines = _lines(_as_text(block))
        numbers = pa.array(range(lines_before + 1, lines_before + len(lines) + 1), pa.int64())
        lines_before += len(lines)
        batches.add("jsonl", file.relative, partition, pa.table({"_line": numbers, "_raw": lines}))
    if not anything:
        raise UnreadableFile("empty file")


def _csv_header(first_line: str) -> list[str]:
    """The header's column names (lower-cased, without spaces), or a whole-file reject if they are
    not a set of names: an empty name or a name twice (case-insensitively) leaves a value unclaimed
    or claimed twice, and no single reading of such a file is right."""
    names = [name.strip().lower() for name in next(csv.reader([first_line]), [])]
    for position, name in enumerate(names, start=1):
        if not name:
            raise UnreadableFile(f"CSV header has an empty column name (column {position})")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UnreadableFile(
            "CSV header repeats the column "
            + ", ".join(repr(name) for name in repeated)
            + " (names are case-insensitive)"
        )
    return names


def _read_csv(data: bytes, text: pa.Array, fields: Sequence[str]) -> pa.Table:
    lines = _lines(text)
    header = _csv_header(lines[0].as_py())
    invalid: dict[int, str] = {}

    def note_invalid(row: pacsv.InvalidRow) -> str:
        invalid[row.number] = f"wrong number of CSV fields (expected {row.expected_columns}, got {row.actual_columns})"
        return "skip"

    try:
        parsed = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(invalid_row_handler=note_invalid, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise UnreadableFile(f"not a readable CSV file ({error})") from None

    data_lines = len(lines) - 1
    # pyarrow numbers invalid rows by physical line (header = line 1); valid rows fill the rest.
    valid_line_numbers = [n for n in range(2, data_lines + 2) if n not in invalid]
    if len(valid_line_numbers) != parsed.num_rows:
        raise UnreadableFile("CSV rows do not line up with lines (a quoted field spans lines?)")
    line_numbers = pa.array(valid_line_numbers + sorted(invalid), pa.int64())
    raw_text = lines.take(pc.subtract(line_numbers, 1))
    blank = pc.equal(pc.utf8_trim_whitespace(raw_text), "")
    errors = pa.array([None] * parsed.num_rows + [invalid[n] for n in sorted(invalid)], pa.string())
    errors = pc.if_else(blank, pa.scalar("blank line"), errors)
    columns: dict[str, pa.Array] = {"_line": line_numbers, "_raw": raw_text, "_error": errors}
    for name in fields:
        if name in parsed.column_names:
            values = parsed.column(name).combine_chunks()
            padded = pa.concat_arrays([values, pa.nulls(len(invalid), pa.large_string())])
            columns[name] = pc.if_else(pc.equal(padded, ""), pa.scalar(None, pa.large_string()), padded)
        else:
            columns[name] = pa.nulls(len(line_numbers), pa.large_string())
    return pa.table(columns).sort_by("_line")


# Parquet records go to DuckDB this many at a time (read by pyarrow, one batch after another).
PARQUET_BATCH_ROWS = 32 * SCAN_BATCH_ROWS
_PARQUET_LINE = "__landing_line"  # the row number column added to each batch


def _parquet_columns(parquet: pq.ParquetFile) -> dict[str, str]:
    """Lower-cased name -> the file's column name, or a whole-file reject when names are not unique
    (a field given twice has no single value)."""
    names = parquet.schema_arrow.names
    if not names:
        raise UnreadableFile("Parquet file has no columns")
    lowered = [name.strip().lower() for name in names]
    if "" in lowered:
        raise UnreadableFile("Parquet file has a column without a name")
    repeated = sorted({name for name in lowered if lowered.count(name) > 1})
    if repeated:
        raise UnreadableFile(
            "Parquet file repeats the column "
            + ", ".join(repr(name) for name in repeated)
            + " (names are case-insensitive)"
        )
    return dict(zip(lowered, names, strict=True))


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parquet_statement(connection: duckdb.DuckDBPyConnection, columns: dict[str, str], fields: Sequence[str]) -> str:
    """The select turning the registered ``_parquet_records`` into the raw-record shape."""
    described = connection.execute(
        "select column_name, column_type from (describe select * from _parquet_records)"
    ).fetchall()
    types = {name: kind.upper() for name, kind in described}

    def as_text(field: str) -> str:
        if field not in columns:
            return f'null::varchar as "{field}"'
        name = _sql_name(columns[field])
        kind = types[columns[field]]
        if kind.startswith("TIMESTAMP"):
            # naive Parquet timestamps are UTC by convention; render them as ISO-8601 with Z
            return f"strftime({name}::timestamptz, '%Y-%m-%dT%H:%M:%S.%fZ') as \"{field}\""
        if kind.startswith(("STRUCT", "MAP")) or kind.endswith("]"):
            return f'to_json({name})::varchar as "{field}"'
        return f'{name}::varchar as "{field}"'

    record = ", ".join(f"{_sql_literal(name)}: {_sql_name(name)}" for name in columns.values())
    projections = ", ".join(as_text(field) for field in fields)
    return f"""
        select ? as _file, ?::date as _partition, {_PARQUET_LINE} as _line, to_json({{{record}}})::varchar as _raw,
               null::varchar as _error, {projections}
        from _parquet_records
    """


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_parquet(file: LandingFile, partition: date | None, batches: RecordBatches) -> None:
    """Read by pyarrow from the opened file (a path handed to DuckDB would be a glob pattern), a batch
    of rows at a time; DuckDB turns each batch into the raw-record shape."""
    connection = batches.connection
    try:
        with file.open() as stream:
            parquet = pq.ParquetFile(stream)
            columns = _parquet_columns(parquet)
            statement, lines_before = None, 0
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                numbers = pa.array(range(lines_before + 1, lines_before + batch.num_rows + 1), pa.int64())
                lines_before += batch.num_rows
                records = pa.Table.from_batches([batch]).append_column(_PARQUET_LINE, numbers)
                connection.register("_parquet_records", _in_scan_batches(records))
                try:
                    statement = statement or _parquet_statement(connection, columns, batches.fields)
                    batches.write_now(statement, [file.relative, partition])
                finally:
                    connection.unregister("_parquet_records")
    except (pa.ArrowInvalid, OSError) as error:
        detail = str(error).splitlines()[0].replace(file.location, file.name)
        raise UnreadableFile(f"not a readable Parquet file ({detail})") from None
    if lines_before == 0:
        raise UnreadableFile("empty file")
