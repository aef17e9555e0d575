"""Suite-wide pytest setup: the ``slow`` marker and the ``--slow`` switch.

The long tests (the million-line trace tests, the 200-schedule sweeps of every scenario) are
marked ``slow``. A plain ``pytest`` deselects them so a developer's loop stays well under 90 s;
``pytest --slow`` (what CI and the README's test command run) runs everything. Deselected is
not skipped: the summary says how many were left out and why.
"""

from __future__ import annotations

import pytest


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
