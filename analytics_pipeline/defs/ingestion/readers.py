"""Landing-zone readers: hand every record of one file, whatever its format, to a *writer* as
the rows of a SQL ``select`` over the loader's scratch DuckDB, in the common raw-record shape:

    _file  (varchar) the file's path relative to the landing root
    _line  (bigint)  1-based line number in the file (row number for Parquet)
    _raw   (varchar) the record's original text, kept for ``raw.rejected_records``
    _error (varchar) why the record could not even be parsed, else null
    <field> (varchar) one column per contract field, as text; null when absent

The writer (validation's :meth:`~analytics_pipeline.defs.ingestion.validation.Checker.write`)
checks them as they come, so a large day is never held whole: JSON Lines files are read in blocks
of whole lines, Parquet files are read by DuckDB itself.

Files are split and parsed by Arrow and DuckDB, never line by line in Python. A file that cannot be
read at all (bad gzip, not UTF-8, not the format its name says, empty) raises
:class:`UnreadableFile` with a reason, possibly after some of its blocks were written; the caller
discards them, rejects the file whole and carries on.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

FORMATS = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
}


class UnreadableFile(Exception):
    """The whole file is unusable; ``str(error)`` is the reason recorded for it."""


@dataclass(frozen=True)
class LandingFile:
    path: Path
    relative: str  # path relative to the landing root, as recorded in the warehouse
    size_bytes: int
    modified_at: datetime

    @classmethod
    def at(cls, path: Path, landing_root: Path) -> LandingFile:
        stat = path.stat()
        return cls(
            path=path,
            relative=path.relative_to(landing_root).as_posix(),
            size_bytes=stat.st_size,
            modified_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC).replace(tzinfo=None),
        )

    @property
    def format(self) -> str | None:
        name = self.path.name.lower()
        for suffix, kind in sorted(FORMATS.items(), key=lambda item: -len(item[0])):
            if name.endswith(suffix):
                return kind
        return None

    @property
    def compressed(self) -> bool:
        return self.path.name.lower().endswith(".gz")


def list_files(folder: Path, landing_root: Path) -> list[LandingFile]:
    """Files of one landing folder in a stable order (hidden and temporary files are skipped)."""
    if not folder.is_dir():
        return []
    paths = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_", "~"))
    )
    return [LandingFile.at(path, landing_root) for path in paths]


# JSON Lines are parsed in blocks of about this many bytes (whole lines), so the text held in Python
# at a time stays small whatever the file's size.
BLOCK_BYTES = 8 * 2**20
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark some writers put first
# Records go to DuckDB as Arrow batches of this many rows: DuckDB scans an Arrow table one batch per
# thread, so a block in one batch would be checked on one core.
SCAN_BATCH_ROWS = 2048

# Takes a select of raw records (SQL and its parameters) and keeps them; returns how many it kept.
Writer = Callable[[str, Sequence[object]], int]


def read_records(
    file: LandingFile, fields: Sequence[str], connection: duckdb.DuckDBPyConnection, write: Writer
) -> None:
    """Give every record of ``file`` to ``write``, in one or more selects over ``connection``."""
    kind = file.format
    if kind is None:
        raise UnreadableFile(
            f"unsupported file type {file.path.name!r}; expected one of "
            + ", ".join(sorted(FORMATS))
        )
    if kind == "parquet":
        _read_parquet(file, fields, connection, write)
    elif kind == "jsonl":
        _read_jsonl(file, fields, connection, write)
    else:
        _write_table(_read_csv(*_decoded_text(file), fields), file, fields, connection, write)


def _write_table(
    records: pa.Table, file: LandingFile, fields: Sequence[str], connection: duckdb.DuckDBPyConnection,
    write: Writer,
) -> None:  # fmt: skip
    columns = ", ".join(["_line", "_raw", "_error", *(f'"{name}"' for name in fields)])
    connection.register("_file_records", _in_scan_batches(records))
    try:
        write(f"select ? as _file, {columns} from _file_records", [file.relative])
    finally:
        connection.unregister("_file_records")


def _in_scan_batches(records: pa.Table) -> pa.Table:
    """``records`` in batches of :data:`SCAN_BATCH_ROWS`, so every thread of the scratch connection scans some."""
    return pa.Table.from_batches(records.to_batches(max_chunksize=SCAN_BATCH_ROWS), records.schema)


def _decoded_text(file: LandingFile) -> tuple[bytes, pa.Array]:
    """The file's bytes (decompressed) and the same bytes as a one-element UTF-8 string array."""
    data = file.path.read_bytes()
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
    opener = gzip.open if file.compressed else open
    rest, first = b"", True
    try:
        with opener(file.path, "rb") as stream:
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


def _read_jsonl(file: LandingFile, fields: Sequence[str], connection: duckdb.DuckDBPyConnection, write: Writer) -> None:
    struct = json.dumps({name: "VARCHAR" for name in fields})
    projections = ", ".join(f'_parsed."{name}" as "{name}"' for name in fields)
    # Valid JSON whose first character (after JSON whitespace) is '{' is an object: cheaper than
    # json_type(), which builds the whole document. A blank line is never valid JSON, so only the
    # invalid lines are trimmed (trimming copies the line). Row order does not matter: validation sorts.
    statement = f"""
        with checked as (
            select
                _line,
                _raw,
                json_valid(_raw) as _valid,
                regexp_matches(_raw, '^[ \\t\\r\\n]*[{{]') as _object
            from _jsonl_lines
        ),
        parsed as (
            select
                _line,
                _raw,
                case
                    when not _valid then case when trim(_raw) = '' then 'blank line' else 'invalid JSON' end
                    when not _object then 'not a JSON object'
                end as _error,
                case when _valid and _object then from_json(_raw, '{struct}') end as _parsed
            from checked
        )
        select ? as _file, _line, _raw, _error, {projections} from parsed
    """
    lines_before, anything = 0, False
    for block in _line_blocks(file):
        anything = anything or bool(block.strip())
        lines = _lines(_as_text(block))
        numbers = pa.array(range(lines_before + 1, lines_before + len(lines) + 1), pa.int64())
        lines_before += len(lines)
        connection.register("_jsonl_lines", _in_scan_batches(pa.table({"_line": numbers, "_raw": lines})))
        try:
            write(statement, [file.relative])
        finally:
            connection.unregister("_jsonl_lines")
    if not anything:
        raise UnreadableFile("empty file")


def _read_csv(data: bytes, text: pa.Array, fields: Sequence[str]) -> pa.Table:
    lines = _lines(text)
    header = [name.strip().strip('"').strip().lower() for name in lines[0].as_py().split(",")]
    invalid: dict[int, str] = {}

    def note_invalid(row: pacsv.InvalidRow) -> str:
        invalid[row.number] = (
            f"wrong number of CSV fields (expected {row.expected_columns}, got {row.actual_columns})"
        )
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


def _read_parquet(
    file: LandingFile, fields: Sequence[str], connection: duckdb.DuckDBPyConnection, write: Writer
) -> None:
    try:
        described = connection.execute(
            "select column_name, column_type from (describe select * from read_parquet(?, hive_partitioning = false))",
            [str(file.path)],
        ).fetchall()
    except duckdb.Error as error:
        detail = str(error).splitlines()[0].replace(str(file.path), file.path.name)
        raise UnreadableFile(f"not a readable Parquet file ({detail})") from None
    types = {name.lower(): (name, kind.upper()) for name, kind in described}

    def as_text(field: str) -> str:
        if field not in types:
            return f"null::varchar as \"{field}\""
        name, kind = types[field]
        if kind.startswith("TIMESTAMP"):
            # naive Parquet timestamps are UTC by convention; render them as ISO-8601 with Z
            return f"strftime(\"{name}\"::timestamptz, '%Y-%m-%dT%H:%M:%S.%fZ') as \"{field}\""
        if kind.startswith(("STRUCT", "MAP")) or kind.endswith("[]"):
            return f"to_json(\"{name}\")::varchar as \"{field}\""
        return f"\"{name}\"::varchar as \"{field}\""

    projections = ", ".join(as_text(field) for field in fields)
    written = write(
        f"""
        select ? as _file, row_number() over () as _line, to_json(src)::varchar as _raw,
               null::varchar as _error, {projections}
        from read_parquet(?, hive_partitioning = false) as src
        """,
        [file.relative, str(file.path)],
    )
    if written == 0:
        raise UnreadableFile("empty file")
