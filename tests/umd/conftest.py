"""Fixtures for the driver tests. The rig itself is in ``rig.py`` (importable by tests)."""
