"""Tests of the capture capability (agents/capture/): no fixtures beyond tests/unit/conftest.py's."""
