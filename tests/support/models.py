"""The small models of ``bench/models.py`` (lost update, lock order, the depth-2 flag bug, the
correct 3-thread program), loaded from the file so the tests judge exactly the programs the
benchmark measures (``bench/`` is not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "bench_models", Path(__file__).resolve().parents[2] / "bench" / "models.py")
assert _spec is not None and _spec.loader is not None
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)
