"""What the wheel carries besides code: the PEP 561 marker that makes type checkers read the
packages' inline hints (h10 F18: without ``py.typed`` mypy and pyright ignore them)."""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEEL = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
    "targets"]["wheel"]


def test_the_wheel_packages_are_the_six_layers() -> None:
    assert WHEEL["packages"] == ["vthreads", "kmd", "umd", "runtime", "scenarios", "wddmemu"]


@pytest.mark.parametrize("package", WHEEL["packages"])
def test_every_package_of_the_wheel_ships_py_typed(package: str) -> None:
    # hatchling puts every file of a listed package folder in the wheel (checked by hand with
    # ``pip wheel``: all six markers are in it); the imported package is the one we ship
    marker = importlib.resources.files(package).joinpath("py.typed")
    assert marker.is_file(), f"{package}/py.typed is missing"
    assert Path(str(marker)).resolve().parent.parent == ROOT
    assert marker.read_bytes() == b""  # an empty marker: the whole package is typed
