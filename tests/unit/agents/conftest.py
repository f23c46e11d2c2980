"""Tests of the capabilities (agents/), a folder each; configuration fixtures: tests/unit/conftest.py."""
