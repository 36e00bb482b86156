"""Writing files atomically, byte-identically for the same arguments."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics_pipeline.lib.sample_data.catalogue import GZIP_LEVEL

# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


@contextmanager
def _atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Write beside the target under a hidden name and rename at the end, so a loader listing the
    folder never reads a half-written file; ``.gz`` targets get gzip with mtime 0 and no stored
    file name, which keeps reruns byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL
                ) as compressed:
                    yield compressed
            else:
                yield raw
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_lines(path: Path, lines: pa.Array, first: int, stop: int, patches: dict[int, list[str]]) -> int:
    """Stream lines ``first..stop-1`` straight from the Arrow buffer, swapping in the patched
    lines; returns how many lines were written."""
    written = stop - first
    cursor = first
    with _atomic_output(path) as handle:
        if first == stop:
            return 0
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
        data = memoryview(lines.buffers()[2])
        for position in sorted(p for p in patches if first <= p < stop):
            handle.write(data[offsets[cursor] : offsets[position]])
            handle.write("".join(patches[position]).encode("utf-8"))
            written += len(patches[position]) - 1
            cursor = position + 1
        if cursor < stop:
            handle.write(data[offsets[cursor] : offsets[stop]])
    return written


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    text = frame.to_csv(index=False, lineterminator="\n")
    with _atomic_output(path) as handle:
        handle.write(text.encode("utf-8"))


def _partition(landing_dir: Path, dataset: str, day: date) -> Path:
    return landing_dir / dataset / f"date={day.isoformat()}"
