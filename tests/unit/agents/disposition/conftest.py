"""Tests of the disposition capability (agents/disposition/): no fixtures beyond tests/unit/conftest.py's."""
