"""Tests of the SLA capability (agents/sla/): no fixtures beyond tests/unit/conftest.py's."""
