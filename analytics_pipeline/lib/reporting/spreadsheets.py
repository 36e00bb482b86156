"""Text that a spreadsheet would run as a formula, kept as text (CSV and formula injection).

A school's name or id comes from the landing zone, so it may begin with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return. Opened in Excel or LibreOffice, such a cell in a CSV file runs as a
formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``), and openpyxl stores a string beginning with
``=`` as a live formula in an XLSX workbook. What OWASP's CSV-injection guidance prescribes is done
here for every file a person opens in a spreadsheet (report CSVs and workbooks, ``export --format
csv|xlsx``):

- CSV: a *text* value that begins with one of those characters gets a single quote in front of it
  (``'=1+2``), which spreadsheets show as the text ``=1+2``. Numbers, dates and booleans are never
  touched: a negative number stays a number.
- XLSX: text is written as a text cell (``data_type 's'``), never as a formula; the value is kept as is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = "^[=+\\-@\t\r]"


def neutralised_text(value: Any) -> Any:
    """``value`` with a leading single quote if it is text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(data: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``data`` whose text cells are safe to open from a CSV file; other cells unchanged."""
    text_columns = [
        name for name in data.columns if data[name].dtype == object or pd.api.types.is_string_dtype(data[name])
    ]
    if not text_columns:
        return data
    data = data.copy()
    for name in text_columns:
        data[name] = data[name].map(neutralised_text)
    return data


def neutralise_arrow(data: pa.Table) -> pa.Table:
    """The same for an Arrow table, column by column in Arrow (exports may hold millions of rows)."""
    columns = []
    for column in data.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.fill_null(pc.match_substring_regex(column, _FORMULA_START), False)
            column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=data.schema)


def text_not_formulas(workbook: Any) -> None:
    """Turn every cell openpyxl took for a formula back into text: this package writes no formulas,
    so each one is a value that began with ``=``."""
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
