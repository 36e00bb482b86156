"""Heavy libraries imported on first use, not when the code location loads.

Every Dagster process (webserver, daemon, each run, ``dagster definitions validate``) imports the
whole code location, while only the steps that build reports or forecasts use pandas (0.35 s to
import). ``tests/test_definitions.py`` checks that loading the code location leaves it unimported.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for a module; the first attribute read imports it (under Python's import lock)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
