"""The results of a benchmark run, and how they are written (bench/RESULTS.md + a JSON twin).

Every figure is the median of its runs; the runs themselves go to the JSON file. A table has one
column per engine; a row with a target says, per engine, whether the median meets it.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINE_NAMES = {"duckdb": "DuckDB", "postgres": "PostgreSQL"}
UNITS: dict[str, Callable[[float], str]] = {
    "s": lambda v: f"{v:.2f} s" if v < 100 else f"{v:.0f} s",
    "events/s": lambda v: f"{v:,.0f} events/s",
    "MiB": lambda v: f"{v:,.0f} MiB",
    "x": lambda v: f"{v:.2f}×",
    "%": lambda v: f"{v:.1f}%",
    "": lambda v: f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}",
}


@dataclass
class Target:
    """``value <= limit`` (or ``<`` when strict) passes, and ``value >= minimum`` when one is given."""

    limit: float
    strict: bool = False
    text: str = ""
    minimum: float | None = None

    def met(self, value: float) -> bool:
        if self.minimum is not None and value < self.minimum:
            return False
        return value < self.limit if self.strict else value <= self.limit


@dataclass
class Row:
    label: str
    unit: str
    runs: dict[str, list[float]] = field(default_factory=dict)
    target: Target | None = None
    # derived rows: median(numerator) / median(denominator), per engine
    ratio_of: tuple[str, str] | None = None

    def value(self, engine: str, rows: dict[str, Row]) -> float | None:
        if self.ratio_of:
            top, bottom = (rows[label].value(engine, rows) for label in self.ratio_of)
            return top / bottom if top is not None and bottom else None
        runs = self.runs.get(engine)
        return statistics.median(runs) if runs else None

    def cell(self, engine: str, rows: dict[str, Row]) -> str:
        value = self.value(engine, rows)
        if value is None:
            return "—"
        text = UNITS[self.unit](value)
        runs = self.runs.get(engine, [])
        if len(runs) > 1:
            text += f" [{UNITS[self.unit](min(runs))} – {UNITS[self.unit](max(runs))}]"
        if self.target:
            text += " pass" if self.target.met(value) else " **FAIL**"
        return text


@dataclass
class Section:
    key: str
    title: str
    intro: str = ""
    rows: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, engine: str, value: float, unit: str, target: Target | None = None) -> None:
        row = self.rows.setdefault(label, Row(label, unit, target=target))
        row.runs.setdefault(engine, []).append(value)

    def ratio(self, label: str, numerator: str, denominator: str, target: Target | None = None) -> None:
        self.rows[label] = Row(label, "x", target=target, ratio_of=(numerator, denominator))


@dataclass
class Report:
    engines: list[str]
    header: list[str] = field(default_factory=list)
    sections: dict[str, Section] = field(default_factory=dict)
    appendix: str = ""

    def section(self, key: str, title: str, intro: str = "") -> Section:
        if key not in self.sections:
            self.sections[key] = Section(key, title, intro)
        return self.sections[key]

    def markdown(self) -> str:
        lines = ["# Benchmark results", "", *self.header, ""]
        for section in self.sections.values():
            lines += [f"## {section.title}", ""]
            if section.intro:
                lines += [section.intro, ""]
            if section.rows:
                names = [ENGINE_NAMES.get(e, e) for e in self.engines]
                lines += ["| | " + " | ".join(names) + " | target |", "|---|" + "---|" * (len(names) + 1)]
                for row in section.rows.values():
                    cells = [row.cell(engine, section.rows) for engine in self.engines]
                    target = row.target.text if row.target else ""
                    lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {target} |")
                lines.append("")
            lines += [f"- {note}" for note in section.notes]
            if section.notes:
                lines.append("")
        if self.appendix:
            lines += [self.appendix.rstrip(), ""]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "engines": self.engines,
            "header": self.header,
            "sections": {
                key: {
                    "title": s.title,
                    "rows": {
                        label: {
                            "unit": row.unit,
                            "runs": row.runs,
                            "median": {e: row.value(e, s.rows) for e in self.engines},
                            "target": row.target.text if row.target else None,
                            "passed": {
                                e: row.target.met(v)
                                for e in self.engines
                                if row.target and (v := row.value(e, s.rows)) is not None
                            },
                        }
                        for label, row in s.rows.items()
                    },
                    "notes": s.notes,
                }
                for key, s in self.sections.items()
            },
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.markdown())
        path.with_suffix(".json").write_text(json.dumps(self.as_json(), indent=1, default=str) + "\n")
