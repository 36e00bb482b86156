"""Deterministic, realistic sample data for the landing zone (``analytics-pipeline generate``).

Library code, not definitions: the world's parameters (``catalogue``), the schools, users and items
(``world``), a day's activity events (``events``), order lines and inventory (``orders``), the
controlled share of malformed records (``defects``) and the byte-identical file writers (``files``);
``generator.generate`` puts them together. See ``generator`` for the two properties that matter
most, determinism and speed.
"""

from analytics_pipeline.lib.sample_data.catalogue import (
    ACTIVITY_TYPES,
    DATASETS,
    EVENT_DEFECTS,
    INVENTORY_DEFECTS,
    ORDER_DEFECTS,
    UNCATALOGUED_ACTIVITY_TYPES,
)
from analytics_pipeline.lib.sample_data.generator import generate
from analytics_pipeline.lib.sample_data.world import GenerationSummary

__all__ = [
    "ACTIVITY_TYPES",
    "DATASETS",
    "EVENT_DEFECTS",
    "INVENTORY_DEFECTS",
    "ORDER_DEFECTS",
    "UNCATALOGUED_ACTIVITY_TYPES",
    "GenerationSummary",
    "generate",
]
