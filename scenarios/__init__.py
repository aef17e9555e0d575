"""Application workloads: named, parameterised programs for the app thread(s).

``wddmemu scenarios`` lists them. Write your own with :func:`scenario` (see
``scenarios/builtin.py`` for examples and ``docs/scenarios.md``).
"""

from . import builtin as _builtin  # noqa: F401  (registers the built-in scenarios)
from ._context import ScenarioContext
from ._registry import REGISTRY, Param, Scenario, get, scenario

__all__ = ["REGISTRY", "Param", "Scenario", "ScenarioContext", "get", "scenario"]
