"""Helpers the tests import: rigs for each layer, application programs, trace builders.

Fixtures live in ``tests/conftest.py``; this package holds plain code (importable, no pytest
magic), one module per layer: ``kernel`` (a kmd rig over the thunks), ``driver`` (a UMD rig
that plays the runtime), ``app`` (application programs on the real runtime), ``traces`` and
``chrome`` (trace files and Chrome-trace rules).
"""
