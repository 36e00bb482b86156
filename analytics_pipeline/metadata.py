"""Markdown tables for materialization metadata (the previews the Dagster UI shows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], cell: Callable[[Any], str] = str) -> str:
    """A markdown table; ``cell`` formats each value, and a ``|`` inside a value cannot break the row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value).replace("|", "/") for value in row) + " |" for row in rows]
    return "\n".join(lines)
