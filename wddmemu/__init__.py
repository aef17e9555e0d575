"""wddmemu: the harness over the emulated WDDM lock path.

Runs scenarios (:func:`run`), hunts races over many schedules (:func:`explore`), saves and
replays failures (:func:`load_failure`, :func:`replay`), checks your own engine programs
(:func:`check_program`), and judges every run with the :class:`Checker`. The layers it drives
sit below it: ``vthreads`` (the engine) → ``kmd`` → ``umd`` → ``runtime`` → ``scenarios``.

    import wddmemu
    result = wddmemu.run(wddmemu.RunSpec("dynamic-vb-ring", ddi_version=0xB, strategy="pct"))
    assert result.ok, result.run.violations

The CLI (``wddmemu``), the trace tools and the pytest plugin are built on these names only.
"""

from ._checker import Checker
from ._explore import (
    ExploreOptions,
    ExploreResult,
    FailureFile,
    FailureFileError,
    Finding,
    Found,
    ReplayOutcome,
    load_failure,
    minimise,
    replay,
    save_failure,
)
from ._explore import explore as explore
from ._runner import (
    RunSpec,
    ScenarioResult,
    SpecError,
    check_spec,
    run_scenario,
    run_scenario_async,
)

#: :func:`run_scenario` under its short name
run = run_scenario

__all__ = [
    "Checker",
    "ExploreOptions",
    "ExploreResult",
    "FailureFile",
    "FailureFileError",
    "Finding",
    "Found",
    "ReplayOutcome",
    "RunSpec",
    "ScenarioResult",
    "SpecError",
    "check_spec",
    "explore",
    "load_failure",
    "minimise",
    "replay",
    "run",
    "run_scenario",
    "run_scenario_async",
    "save_failure",
]
