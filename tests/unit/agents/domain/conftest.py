"""Tests of the shared domain (agents/domain/): no fixtures beyond tests/unit/conftest.py's."""
