"""wddmemu: the harness over the emulated WDDM lock path.

Runs scenarios (:func:`run`), hunts races over many schedules (:func:`explore`), saves and
replays failures (:func:`load_failure`, :func:`replay`), checks your own engine programs
(:func:`check_program`), and judges every run with the :class:`Checker`. The layers it drives
sit below it: ``vthreads`` (the engine) → ``kmd`` → ``umd`` → ``runtime`` → ``scenarios``.

    import wddmemu
    result = wddmemu.run(wddmemu.RunSpec("dynamic-vb-ring", ddi_version=0xB, strategy="pct"))
    assert result.ok, result.run.violations

Your own driver: ``wddmemu.register_driver("mydrv", factory)`` or ``@wddmemu.driver("mydrv")``
in a module you load with ``wddmemu --load MODULE`` (or install under the ``wddmemu.drivers``
entry point); see ``docs/scenarios.md``.

The names below are provided lazily (PEP 562 ``__getattr__``) **for startup speed only**: the
console script imports this package, and ``wddmemu --version`` must not pay for the engine,
kernel, driver, runtime and checker. There is no import cycle behind it; ``import wddmemu``
followed by any name imports its module on first use, exactly as an eager import would.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the private module that defines it
_NAMES = {
    "Checker": "_checker",
    "ExploreOptions": "_explore",
    "ExploreResult": "_explore",
    "FailureFile": "_explore",
    "FailureFileError": "_explore",
    "Finding": "_explore",
    "Found": "_explore",
    "ReplayOutcome": "_explore",
    "explore": "_explore",
    "findings_to_end": "_explore",
    "group_failures": "_explore",
    "FindingGroup": "_explore",
    "load_failure": "_explore",
    "minimise": "_explore",
    "replay": "_explore",
    "save_failure": "_explore",
    "RunSpec": "_runner",
    "ScenarioResult": "_runner",
    "check_spec": "_runner",
    "run_scenario": "_runner",
    "run_scenario_async": "_runner",
    "SpecError": "_errors",
    "DRIVERS": "_drivers",
    "driver": "_drivers",
    "register_driver": "_drivers",
    "resolve_driver": "_drivers",
    "LoadRefused": "_loading",
    "PluginWarning": "_loading",
    "allow_module": "_loading",
    "load_entry_points": "_drivers",
    "load_module": "_drivers",
    "connect_cluster": "_cluster",
    "explore_on_cluster": "_cluster",
    "ProgramResult": "_program",
    "check_program": "_program",
    "explore_async": "_async",
    "replay_async": "_async",
    "check_program_async": "_async",
    "RunNotStopped": "_giving_up",
}

__all__ = [
    "DRIVERS",
    "Checker",
    "ExploreOptions",
    "ExploreResult",
    "FailureFile",
    "FailureFileError",
    "Finding",
    "FindingGroup",
    "Found",
    "LoadRefused",
    "PluginWarning",
    "ProgramResult",
    "ReplayOutcome",
    "RunNotStopped",
    "RunSpec",
    "ScenarioResult",
    "SpecError",
    "allow_module",
    "check_program",
    "check_program_async",
    "check_spec",
    "connect_cluster",
    "driver",
    "explore",
    "explore_async",
    "explore_on_cluster",
    "findings_to_end",
    "group_failures",
    "load_entry_points",
    "load_failure",
    "load_module",
    "minimise",
    "register_driver",
    "replay",
    "replay_async",
    "resolve_driver",
    "run",
    "run_scenario",
    "run_scenario_async",
    "save_failure",
]

if TYPE_CHECKING:
    from ._async import check_program_async, explore_async, replay_async
    from ._checker import Checker
    from ._cluster import connect_cluster, explore_on_cluster
    from ._drivers import (
        DRIVERS,
        driver,
        load_entry_points,
        load_module,
        register_driver,
        resolve_driver,
    )
    from ._errors import SpecError
    from ._explore import (
        ExploreOptions,
        ExploreResult,
        FailureFile,
        FailureFileError,
        Finding,
        FindingGroup,
        Found,
        ReplayOutcome,
        explore,
        findings_to_end,
        group_failures,
        load_failure,
        minimise,
        replay,
        save_failure,
    )
    from ._giving_up import RunNotStopped
    from ._loading import LoadRefused, PluginWarning, allow_module
    from ._program import ProgramResult, check_program
    from ._runner import RunSpec, ScenarioResult, check_spec, run_scenario, run_scenario_async

    run = run_scenario


def __getattr__(name: str) -> Any:
    if name == "run":  # :func:`run_scenario` under its short name
        value = importlib.import_module("._runner", __name__).run_scenario
    elif name in _NAMES:
        value = getattr(importlib.import_module(f"._{_NAMES[name][1:]}", __name__), name)
    else:
        raise AttributeError(f"module 'wddmemu' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
