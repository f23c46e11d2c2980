"""Tests of the configuration reader (configio/): no fixtures beyond tests/unit/conftest.py's."""
