"""Suite-wide pytest setup: shared fixtures, the ``slow`` marker and the ``--slow`` switch.

Fixtures (the helpers behind them are plain code in :mod:`tests.support`, which tests import
directly when they need more than a fixture gives):

- ``backend``: ``"asyncio"`` and ``"trio"`` — a test that takes it runs once on each;
- ``kernel_rig``: ``make(config=None) -> tests.support.kernel.Rig`` (adapter, device and
  context over the thunks; ``await rig.setup()`` inside a run);
- ``driver_rig``: ``run(prog, **kw)`` runs ``prog(rig)`` against the reference driver with the
  test playing the runtime (``tests.support.driver``), on ``backend``;
- ``app_rig``: ``run(program, **kw)`` runs ``program(device)`` on the real runtime and driver
  (``tests.support.app``), on ``backend``.

The long tests (the million-line trace tests, the 200-schedule sweeps of every scenario) are
marked ``slow``. A plain ``pytest`` deselects them so a developer's loop stays well under 90 s;
``pytest --slow`` (what CI and the README's test command run) runs everything. Deselected is
not skipped: the summary says how many were left out and why.
"""

from __future__ import annotations

import sys

# Write bytecode even where PYTHONDONTWRITEBYTECODE is set (this workplace sets it). Without a
# cache every run re-parses and re-rewrites the asserts of ~100 test files (~8 s) and every
# subprocess a test starts compiles the packages from source again: the default run went from
# ~97 s to ~126 s. The files go to the gitignored __pycache__ directories only; Python checks
# each against its source, so a stale one is never used. Set before the imports below, so the
# project's modules and every test module are cached too (docs/testing.md, "Bytecode").
sys.dont_write_bytecode = False

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from tests.support import app, driver, kernel


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def kernel_rig() -> Callable[..., kernel.Rig]:
    return kernel.Rig


@pytest.fixture
def driver_rig(backend: str) -> Callable[..., Any]:
    return partial(driver.run, backend=backend)


@pytest.fixture
def app_rig(backend: str) -> Callable[..., app.AppRun]:
    return partial(app.run_app, backend=backend)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the tests marked slow (CI does)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long test; runs only with --slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    keep, slow = [], []
    for item in items:
        (slow if item.get_closest_marker("slow") else keep).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
